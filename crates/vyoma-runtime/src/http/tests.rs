use vyoma_manifest::OutboundRule;

use super::{Via, via};

fn rules(list: &[&str]) -> Vec<OutboundRule> {
    list.iter().map(|s| OutboundRule::parse(s).unwrap()).collect()
}

fn go(url: &str, list: &[&str]) -> Via {
    via(&url.parse().unwrap(), &rules(list))
}

#[test]
fn nothing_is_allowed_without_a_rule() {
    assert_eq!(
        go("https://example.com/x", &[]),
        Via::Refused("https://example.com:443: not in [capabilities.http] outbound".into())
    );
}

#[test]
fn the_network_is_reached_only_as_granted() {
    let r = ["https://api.example.com", "http://127.0.0.1:8080", "http://[::1]:9000"];
    assert_eq!(go("https://api.example.com/v1?q=1", &r), Via::Network);
    assert_eq!(go("https://API.example.com", &r), Via::Network);
    assert_eq!(go("http://127.0.0.1:8080/", &r), Via::Network);
    assert_eq!(go("http://[::1]:9000/", &r), Via::Network);
    assert!(matches!(go("http://api.example.com", &r), Via::Refused(_)));
    assert!(matches!(go("https://api.example.com:8443", &r), Via::Refused(_)));
    assert!(matches!(go("http://127.0.0.1:8081/", &r), Via::Refused(_)));
    assert!(matches!(go("http://localhost:8080/", &r), Via::Refused(_)));
}

#[test]
fn apps_are_reached_by_name_only_when_granted() {
    let r = ["http://counter.vyoma.internal"];
    assert_eq!(go("http://counter.vyoma.internal/n", &r), Via::App("counter".into()));
    assert_eq!(
        go("http://other.vyoma.internal/", &r),
        Via::Refused(
            "http://other.vyoma.internal:80: not granted; add \"http://other.vyoma.internal\" to [capabilities.http] outbound"
                .into()
        )
    );
    assert!(matches!(go("https://counter.vyoma.internal/", &r), Via::Refused(_)));
    // `*` is the network, never an app.
    assert!(matches!(
        go("http://counter.vyoma.internal/", &["*://*:*"]),
        Via::Refused(_)
    ));
    assert_eq!(
        go("http://any-app.vyoma.internal/", &["http://*.vyoma.internal"]),
        Via::App("any-app".into())
    );
}

#[test]
fn urls_without_a_known_scheme_or_host_are_refused() {
    assert!(matches!(go("/relative", &["*://*:*"]), Via::Refused(_)));
    assert!(matches!(go("ftp://example.com/", &["*://*:*"]), Via::Refused(_)));
}
