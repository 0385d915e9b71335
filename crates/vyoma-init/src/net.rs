//! The machine's network, set up by PID 1 over netlink (no `ip`, no shell): `lo` always, and
//! with `vyoma.net=` one interface with a fixed address and default gateway, or an address
//! from DHCP ([`crate::dhcp`]). The decisions ([`configure`]) are written against the
//! [`Netlink`] trait, so they are tested with a fake; [`RtNetlink`] is the real one.

use std::net::Ipv4Addr;

use crate::cmdline::NetConfig;

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Its name (`lo`, `eth0`).
    pub name: String,
    /// Its index.
    pub index: u32,
    /// Whether it is a loopback interface.
    pub loopback: bool,
    /// Its hardware address.
    pub mac: Vec<u8>,
}

/// The netlink operations PID 1 needs. Each error is one line saying what failed.
#[allow(async_fn_in_trait, reason = "called once at boot, never across threads")]
pub trait Netlink {
    /// Every interface.
    async fn links(&self) -> Result<Vec<Link>, String>;
    /// Brings the interface up.
    async fn set_up(&self, index: u32) -> Result<(), String>;
    /// Adds an IPv4 address to the interface.
    async fn add_address(&self, index: u32, addr: Ipv4Addr, prefix: u8) -> Result<(), String>;
    /// Adds the default route through `gateway`.
    async fn add_default_route(&self, gateway: Ipv4Addr) -> Result<(), String>;
}

/// What the network looks like once set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Configured {
    /// Only `lo`.
    LoopbackOnly,
    /// An interface with an address.
    Interface {
        /// Its name.
        dev: String,
        /// The address.
        addr: Ipv4Addr,
        /// The prefix length.
        prefix: u8,
        /// The default gateway.
        gateway: Option<Ipv4Addr>,
        /// Where the address came from (`static`, `dhcp from 10.0.2.2`).
        source: String,
        /// The DHCP lease and the interface's hardware address, to renew it.
        dhcp: Option<(Vec<u8>, crate::dhcp::Lease)>,
    },
}

impl std::fmt::Display for Configured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Configured::LoopbackOnly => f.write_str("lo only"),
            Configured::Interface {
                dev,
                addr,
                prefix,
                gateway,
                source,
                ..
            } => {
                write!(f, "{dev} {addr}/{prefix}")?;
                if let Some(g) = gateway {
                    write!(f, " via {g}")?;
                }
                write!(f, " ({source}); lo")
            }
        }
    }
}

/// The interface `dev` names, or the first that is not loopback.
fn pick<'a>(links: &'a [Link], dev: Option<&str>) -> Result<&'a Link, String> {
    match dev {
        Some(d) => links.iter().find(|l| l.name == d).ok_or_else(|| {
            format!(
                "no interface named `{d}` (interfaces: {})",
                links.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", ")
            )
        }),
        None => links.iter().find(|l| !l.loopback).ok_or_else(|| {
            "no network interface besides lo: start the VM with one (vyoma boot does: virtio-net), or use vyoma.net=off".to_string()
        }),
    }
}

/// Brings `lo` up (quick: PID 1 does it before the apps start). Returns every interface.
pub async fn loopback<N: Netlink>(nl: &N) -> Result<Vec<Link>, String> {
    let links = nl.links().await?;
    for l in links.iter().filter(|l| l.loopback) {
        up(nl, l).await?;
    }
    Ok(links)
}

/// Brings `link` up.
async fn up<N: Netlink>(nl: &N, link: &Link) -> Result<(), String> {
    nl.set_up(link.index)
        .await
        .map_err(|e| format!("bringing up {}: {e}", link.name))
}

/// Gives `link` the address `addr/prefix`, and the default route through `gateway`.
async fn assign<N: Netlink>(
    nl: &N,
    link: &Link,
    addr: Ipv4Addr,
    prefix: u8,
    gateway: Option<Ipv4Addr>,
) -> Result<(), String> {
    nl.add_address(link.index, addr, prefix)
        .await
        .map_err(|e| format!("adding {addr}/{prefix} to {}: {e}", link.name))?;
    if let Some(g) = gateway {
        nl.add_default_route(g)
            .await
            .map_err(|e| format!("adding the default route via {g}: {e}"))?;
    }
    Ok(())
}

/// Sets the interfaces up as `cfg` says (`links` from [`loopback`]). A DHCP configuration
/// asks `lease` for an address on the interface once it is up. PID 1 runs this beside the
/// apps' start, so a slow or absent DHCP server never holds the boot up.
pub async fn configure<N, F, Fut>(nl: &N, cfg: &NetConfig, links: &[Link], lease: F) -> Result<Configured, String>
where
    N: Netlink,
    F: FnOnce(Link) -> Fut,
    Fut: std::future::Future<Output = Result<crate::dhcp::Lease, String>>,
{
    match cfg {
        NetConfig::Off => Ok(Configured::LoopbackOnly),
        NetConfig::Static {
            addr,
            prefix,
            gateway,
            dev,
        } => {
            let link = pick(links, dev.as_deref())?;
            up(nl, link).await?;
            assign(nl, link, *addr, *prefix, *gateway).await?;
            Ok(Configured::Interface {
                dev: link.name.clone(),
                addr: *addr,
                prefix: *prefix,
                gateway: *gateway,
                source: "static".into(),
                dhcp: None,
            })
        }
        NetConfig::Dhcp { dev } => {
            let link = pick(links, dev.as_deref())?;
            up(nl, link).await?;
            let l = lease(link.clone())
                .await
                .map_err(|e| format!("DHCP on {}: {e}", link.name))?;
            assign(nl, link, l.addr, l.prefix, l.router).await?;
            Ok(Configured::Interface {
                dev: link.name.clone(),
                addr: l.addr,
                prefix: l.prefix,
                gateway: l.router,
                source: format!("dhcp from {}, lease {} s", l.server, l.lease_secs),
                dhcp: Some((link.mac.clone(), l)),
            })
        }
    }
}

/// The kernel's netlink, through rtnetlink.
#[derive(Debug, Clone)]
pub struct RtNetlink {
    handle: rtnetlink::Handle,
}

impl RtNetlink {
    /// Opens a netlink socket (its connection runs as a task on the current runtime).
    pub fn connect() -> Result<RtNetlink, String> {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|e| format!("cannot open a netlink socket: {e}"))?;
        tokio::spawn(conn);
        Ok(RtNetlink { handle })
    }
}

impl Netlink for RtNetlink {
    async fn links(&self) -> Result<Vec<Link>, String> {
        use futures::TryStreamExt as _;
        use rtnetlink::packet_route::link::{LinkAttribute, LinkLayerType};
        let mut out = Vec::new();
        let mut s = self.handle.link().get().execute();
        while let Some(m) = s.try_next().await.map_err(|e| format!("listing interfaces: {e}"))? {
            let name = m
                .attributes
                .iter()
                .find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            let mac = m
                .attributes
                .iter()
                .find_map(|a| match a {
                    LinkAttribute::Address(a) => Some(a.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            out.push(Link {
                name,
                index: m.header.index,
                loopback: m.header.link_layer_type == LinkLayerType::Loopback,
                mac,
            });
        }
        Ok(out)
    }

    async fn set_up(&self, index: u32) -> Result<(), String> {
        self.handle
            .link()
            .set(rtnetlink::LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| e.to_string())
    }

    async fn add_address(&self, index: u32, addr: Ipv4Addr, prefix: u8) -> Result<(), String> {
        self.handle
            .address()
            .add(index, addr.into(), prefix)
            .execute()
            .await
            .map_err(|e| e.to_string())
    }

    async fn add_default_route(&self, gateway: Ipv4Addr) -> Result<(), String> {
        let route = rtnetlink::RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .build();
        self.handle
            .route()
            .add(route)
            .execute()
            .await
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::dhcp::Lease;

    #[derive(Default)]
    struct Fake {
        links: Vec<Link>,
        calls: Mutex<Vec<String>>,
        fail_route: bool,
    }

    impl Netlink for Fake {
        async fn links(&self) -> Result<Vec<Link>, String> {
            Ok(self.links.clone())
        }
        async fn set_up(&self, index: u32) -> Result<(), String> {
            self.calls.lock().unwrap().push(format!("up {index}"));
            Ok(())
        }
        async fn add_address(&self, index: u32, addr: Ipv4Addr, prefix: u8) -> Result<(), String> {
            self.calls.lock().unwrap().push(format!("addr {index} {addr}/{prefix}"));
            Ok(())
        }
        async fn add_default_route(&self, gateway: Ipv4Addr) -> Result<(), String> {
            if self.fail_route {
                return Err("Network is unreachable (os error 101)".into());
            }
            self.calls.lock().unwrap().push(format!("route {gateway}"));
            Ok(())
        }
    }

    fn machine() -> Fake {
        Fake {
            links: vec![
                Link {
                    name: "lo".into(),
                    index: 1,
                    loopback: true,
                    mac: vec![0; 6],
                },
                Link {
                    name: "eth0".into(),
                    index: 2,
                    loopback: false,
                    mac: vec![0x52, 0x54, 0, 0x12, 0x34, 0x56],
                },
            ],
            ..Fake::default()
        }
    }

    async fn no_dhcp(_: Link) -> Result<Lease, String> {
        panic!("no DHCP asked for")
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Loopback first, then the rest, as PID 1 does.
    async fn setup<F, Fut>(nl: &Fake, cfg: &NetConfig, lease: F) -> Result<Configured, String>
    where
        F: FnOnce(Link) -> Fut,
        Fut: std::future::Future<Output = Result<Lease, String>>,
    {
        let links = loopback(nl).await?;
        configure(nl, cfg, &links, lease).await
    }

    #[test]
    fn lo_is_always_up() {
        let nl = machine();
        assert_eq!(run(setup(&nl, &NetConfig::Off, no_dhcp)), Ok(Configured::LoopbackOnly));
        assert_eq!(*nl.calls.lock().unwrap(), ["up 1"]);
    }

    #[test]
    fn a_static_address_and_gateway() {
        let nl = machine();
        let cfg = NetConfig::Static {
            addr: Ipv4Addr::new(10, 0, 2, 15),
            prefix: 24,
            gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
            dev: None,
        };
        let c = run(setup(&nl, &cfg, no_dhcp)).unwrap();
        assert_eq!(c.to_string(), "eth0 10.0.2.15/24 via 10.0.2.2 (static); lo");
        assert_eq!(
            *nl.calls.lock().unwrap(),
            ["up 1", "up 2", "addr 2 10.0.2.15/24", "route 10.0.2.2"]
        );
    }

    #[test]
    fn dhcp_configures_what_the_lease_says() {
        let nl = machine();
        let lease = |link: Link| async move {
            assert_eq!(link.name, "eth0");
            Ok(Lease {
                addr: Ipv4Addr::new(10, 0, 2, 15),
                prefix: 24,
                router: Some(Ipv4Addr::new(10, 0, 2, 2)),
                server: Ipv4Addr::new(10, 0, 2, 2),
                lease_secs: 86400,
            })
        };
        let c = run(setup(&nl, &NetConfig::Dhcp { dev: None }, lease)).unwrap();
        assert_eq!(
            c.to_string(),
            "eth0 10.0.2.15/24 via 10.0.2.2 (dhcp from 10.0.2.2, lease 86400 s); lo"
        );
        let failing = |_: Link| async { Err::<Lease, _>("no answer from a DHCP server in 6 s".to_string()) };
        let e = run(setup(&machine(), &NetConfig::Dhcp { dev: None }, failing)).unwrap_err();
        assert_eq!(e, "DHCP on eth0: no answer from a DHCP server in 6 s");
    }

    #[test]
    fn problems_name_what_failed() {
        let only_lo = Fake {
            links: vec![machine().links[0].clone()],
            ..Fake::default()
        };
        let cfg = NetConfig::Static {
            addr: Ipv4Addr::new(10, 0, 2, 15),
            prefix: 24,
            gateway: None,
            dev: None,
        };
        let e = run(setup(&only_lo, &cfg, no_dhcp)).unwrap_err();
        assert!(e.starts_with("no network interface besides lo"), "{e}");
        let named = NetConfig::Static {
            addr: Ipv4Addr::new(10, 0, 2, 15),
            prefix: 24,
            gateway: None,
            dev: Some("wlan0".into()),
        };
        let e = run(setup(&machine(), &named, no_dhcp)).unwrap_err();
        assert_eq!(e, "no interface named `wlan0` (interfaces: lo, eth0)");
        let nl = Fake {
            fail_route: true,
            ..machine()
        };
        let cfg = NetConfig::Static {
            addr: Ipv4Addr::new(10, 0, 2, 15),
            prefix: 24,
            gateway: Some(Ipv4Addr::new(192, 168, 9, 1)),
            dev: None,
        };
        let e = run(setup(&nl, &cfg, no_dhcp)).unwrap_err();
        assert_eq!(
            e,
            "adding the default route via 192.168.9.1: Network is unreachable (os error 101)"
        );
    }
}
