//! The HTTP parts of a manifest and the gateway's matching: any route pattern, route host
//! and outbound rule parses or is refused without panicking; what parses prints back to
//! the same value; and matching any request path against a route never panics, and agrees
//! with the route's shape (its parameters are exactly its `:name` segments).
#![no_main]
use libfuzzer_sys::fuzz_target;
use vyoma_manifest::{HostPattern, OutboundRule, Route, RoutePattern, Segment};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let mut parts = s.splitn(4, '\n');
    let (pattern, host, rule, path) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    if let Ok(r) = OutboundRule::parse(rule) {
        assert_eq!(OutboundRule::parse(&r.to_string()).as_ref(), Ok(&r), "{r}");
    }
    let host = HostPattern::parse(host).ok();
    let Ok(p) = RoutePattern::parse(pattern) else { return };
    assert_eq!(RoutePattern::parse(p.as_str()).as_ref(), Ok(&p));
    let route = Route { path: p, host };
    let params = route.path.segments().iter().filter(|s| matches!(s, Segment::Param(_))).count();
    for h in ["", "example.com", path] {
        if route.matches(h, path).is_some() {
            assert_eq!(route.path.params(path).len(), params);
        }
    }
    // A route always conflicts with itself.
    assert!(route.conflicts_with(&route));
});
