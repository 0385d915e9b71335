//! The routing table: every app's routes, and which app a request goes to. Pure: built
//! from manifests, asked with a host and a path; the rules are `vyoma_manifest`'s
//! (the most specific route wins; a route naming its host beats one that does not).

use std::collections::HashMap;

use vyoma_manifest::{Route, Segment, Specificity, split_path};

/// Routes to apps, in no particular order: every request is matched against each route,
/// and the most specific match wins (routes of different apps never tie: clashing routes
/// are refused when the app set is checked).
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<(Route, String)>,
    /// Routes whose first segment is a literal, by that literal (a request is matched only
    /// against the routes for its own first segment, and `rest`).
    by_first: HashMap<String, Vec<usize>>,
    /// The other routes (`/`, `/...`, `/:name...`).
    rest: Vec<usize>,
}

/// How specifically a route matches: whether it named the host, then the path's rank.
type HostAndPath = (bool, Specificity);

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match<'a> {
    /// The app.
    pub app: &'a str,
    /// The route that matched.
    pub route: &'a Route,
}

impl Router {
    /// A table of `(route, app)` pairs.
    pub fn new(routes: impl IntoIterator<Item = (Route, String)>) -> Router {
        let routes: Vec<(Route, String)> = routes.into_iter().collect();
        let mut by_first: HashMap<String, Vec<usize>> = HashMap::new();
        let mut rest = Vec::new();
        for (i, (r, _)) in routes.iter().enumerate() {
            match r.path.segments().first() {
                Some(Segment::Literal(l)) => by_first.entry(l.clone()).or_default().push(i),
                _ => rest.push(i),
            }
        }
        Router { routes, by_first, rest }
    }

    /// Every app's routes from their manifests.
    pub fn from_manifests<'m>(apps: impl IntoIterator<Item = &'m vyoma_manifest::Manifest>) -> Router {
        Router::new(
            apps.into_iter()
                .flat_map(|m| m.http.routes.iter().map(|r| (r.value.clone(), m.name.clone()))),
        )
    }

    /// How many routes the table holds.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The app a request for `host` (without port) and `path` (without query) goes to.
    pub fn find(&self, host: &str, path: &str) -> Option<Match<'_>> {
        let parts = split_path(path)?;
        let mut best: Option<(HostAndPath, usize)> = None;
        let first = parts
            .first()
            .and_then(|p| self.by_first.get(*p))
            .map_or(&[][..], Vec::as_slice);
        for &i in first.iter().chain(&self.rest) {
            let route = &self.routes[i].0;
            if let Some(m) = route.matches_segments(host, &parts)
                && best.as_ref().is_none_or(|(b, _)| m > *b)
            {
                best = Some((m, i));
            }
        }
        best.map(|(_, i)| Match {
            app: &self.routes[i].1,
            route: &self.routes[i].0,
        })
    }
}

/// The host a request names, lowercase, without port: from the URI's authority (absolute
/// form) or the `Host` header. Empty if neither is there.
pub fn request_host<B>(req: &http::Request<B>) -> String {
    let raw = req
        .uri()
        .host()
        .map(str::to_string)
        .or_else(|| req.headers().get(http::header::HOST)?.to_str().ok().map(str::to_string))
        .unwrap_or_default();
    strip_port(&raw).to_ascii_lowercase()
}

fn strip_port(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        // [v6]:port
        return rest.split(']').next().unwrap_or(rest);
    }
    match h.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => h,
    }
}

#[cfg(test)]
mod tests {
    use vyoma_manifest::{HostPattern, RoutePattern};

    use super::*;

    fn table(list: &[(&str, Option<&str>, &str)]) -> Router {
        Router::new(list.iter().map(|(p, h, app)| {
            (
                Route {
                    path: RoutePattern::parse(p).unwrap(),
                    host: h.map(|h| HostPattern::parse(h).unwrap()),
                },
                app.to_string(),
            )
        }))
    }

    #[test]
    fn requests_go_to_the_most_specific_route_across_apps() {
        let r = table(&[
            ("/...", None, "site"),
            ("/api/...", None, "api"),
            ("/api/users/:id", None, "users"),
            ("/hello", None, "hello"),
            ("/...", Some("admin.local"), "admin"),
        ]);
        let app = |host: &str, path: &str| r.find(host, path).map(|m| m.app.to_string());
        assert_eq!(app("x", "/").as_deref(), Some("site"));
        assert_eq!(app("x", "/hello").as_deref(), Some("hello"));
        assert_eq!(app("x", "/hello/there").as_deref(), Some("site"));
        assert_eq!(app("x", "/api").as_deref(), Some("api"));
        assert_eq!(app("x", "/api/users/3").as_deref(), Some("users"));
        assert_eq!(app("x", "/api/users/3/posts").as_deref(), Some("api"));
        assert_eq!(app("admin.local", "/api/users/3").as_deref(), Some("admin"));
        assert_eq!(app("x", "no-slash"), None);
    }

    #[test]
    fn no_route_is_no_match() {
        let r = table(&[("/hello", None, "hello")]);
        assert!(r.find("x", "/").is_none());
        assert!(Router::default().find("x", "/").is_none());
    }

    #[test]
    fn the_host_comes_from_the_uri_or_the_header_without_port() {
        let req = |uri: &str, host: Option<&str>| {
            let mut b = http::Request::builder().uri(uri);
            if let Some(h) = host {
                b = b.header("host", h);
            }
            b.body(()).unwrap()
        };
        assert_eq!(request_host(&req("/x", Some("Example.com:8080"))), "example.com");
        assert_eq!(request_host(&req("/x", Some("[::1]:80"))), "::1");
        assert_eq!(request_host(&req("http://a.b:1/x", Some("other"))), "a.b");
        assert_eq!(request_host(&req("/x", None)), "");
    }

    proptest::proptest! {
        /// Whatever the path, the router (which looks only at the routes for the path's
        /// first segment) picks the route a search of every route would pick.
        #[test]
        fn find_agrees_with_a_search_of_every_route(path in "/[ab/:.]{0,12}", host in "[hx]") {
            let list = [
                ("/...", None, "a"),
                ("/a/:x", None, "b"),
                ("/a/b/...", None, "c"),
                ("/a", None, "d"),
                ("/:y/b", None, "e"),
                ("/b/...", Some("x"), "f"),
                ("/", None, "g"),
            ];
            let r = table(&list);
            let brute = r
                .routes
                .iter()
                .filter_map(|(route, app)| route.matches(&host, &path).map(|m| (m, app.as_str())))
                .max_by(|a, b| a.0.cmp(&b.0))
                .map(|(_, app)| app);
            proptest::prop_assert_eq!(r.find(&host, &path).map(|m| m.app), brute);
        }
    }
}
