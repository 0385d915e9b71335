//! VyomaOS options on the kernel command line (`vyoma.KEY=VALUE`). Other parameters are
//! the kernel's and are ignored; a malformed `vyoma.` option is reported and its default
//! used, so a typo never stops the machine from booting.

use std::net::{Ipv4Addr, SocketAddr};

use vyoma_display::{Layout, Size};

use crate::sys::PowerAction;

/// How the machine's network is set up (`vyoma.net=`). `lo` is always brought up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetConfig {
    /// `vyoma.net=off`, or no option: only `lo`.
    #[default]
    Off,
    /// `vyoma.net=dhcp[,dev=NAME]`: an address from a DHCP server on the interface (the
    /// first Ethernet interface by default).
    Dhcp {
        /// The interface, if named.
        dev: Option<String>,
    },
    /// `vyoma.net=ADDR/PREFIX[,gw=GATEWAY][,dev=NAME]`: a fixed IPv4 address.
    Static {
        /// The address.
        addr: Ipv4Addr,
        /// Its prefix length.
        prefix: u8,
        /// The default gateway, if any.
        gateway: Option<Ipv4Addr>,
        /// The interface, if named.
        dev: Option<String>,
    },
}

/// The management API's address in the image by default: every interface, port 7443
/// (HTTPS).
pub const DEFAULT_API: &str = "0.0.0.0:7443";
/// Where the HTTP gateway listens unless `vyoma.http=` says otherwise (when some app has
/// routes).
pub const DEFAULT_HTTP: &str = "0.0.0.0:80";

/// Parses the value of `vyoma.net=`.
fn net(value: &str) -> Result<NetConfig, String> {
    let usage = "write `vyoma.net=off`, `vyoma.net=dhcp` or `vyoma.net=10.0.2.15/24,gw=10.0.2.2` (add `,dev=eth0` to pick the interface)";
    let mut parts = value.split(',');
    let first = parts.next().unwrap_or_default();
    let mut gateway = None;
    let mut dev = None;
    for p in parts {
        match p.split_once('=') {
            Some(("gw", g)) => {
                gateway = Some(
                    g.parse::<Ipv4Addr>()
                        .map_err(|_| format!("`gw={}` is not an IPv4 address: {usage}", shown(g)))?,
                );
            }
            Some(("dev", d)) if !d.is_empty() && d.len() < 16 && !d.contains('/') => dev = Some(d.to_string()),
            _ => return Err(format!("unknown part `{}`: {usage}", shown(p))),
        }
    }
    match first {
        "off" if gateway.is_none() && dev.is_none() => Ok(NetConfig::Off),
        "dhcp" if gateway.is_none() => Ok(NetConfig::Dhcp { dev }),
        cidr => {
            let (addr, prefix) = cidr
                .split_once('/')
                .ok_or_else(|| format!("`{}` is not ADDR/PREFIX: {usage}", shown(cidr)))?;
            let addr = addr
                .parse::<Ipv4Addr>()
                .map_err(|_| format!("`{}` is not an IPv4 address: {usage}", shown(addr)))?;
            let prefix = prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= 32)
                .ok_or_else(|| format!("`/{}` is not a prefix length from 0 to 32: {usage}", shown(prefix)))?;
            Ok(NetConfig::Static {
                addr,
                prefix,
                gateway,
                dev,
            })
        }
    }
}

/// What the kernel command line asks of VyomaOS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootOptions {
    /// `vyoma.log=FILTER`: the supervisor's log filter (`warn` by default), e.g. `info`.
    pub log: String,
    /// `vyoma.apps=a,b`: start only these apps (and what they depend on); the others stay
    /// stopped and can be started from the console. `None`: all.
    pub apps: Option<Vec<String>>,
    /// `vyoma.panic=reboot|poweroff`: what a supervisor panic ends in (reboot by default,
    /// so a device comes back by itself).
    pub on_panic: PowerAction,
    /// `vyoma.dir=PATH`: the folder of app folders (`/apps` by default).
    pub apps_dir: String,
    /// `vyoma.memory=SIZE`: the memory all apps together may hold (e.g. `384MiB`). `None`:
    /// the machine's memory less what the supervisor keeps.
    pub memory_budget: Option<u64>,
    /// `vyoma.net=`: the network.
    pub net: NetConfig,
    /// `vyoma.api=ADDR:PORT|off`: where the management API listens ([`DEFAULT_API`] by
    /// default; `None`: off).
    pub api: Option<SocketAddr>,
    /// `vyoma.http=ADDR:PORT|off`: where the HTTP gateway listens ([`DEFAULT_HTTP`] by
    /// default, served when some app has routes; `None`: off).
    pub http: Option<SocketAddr>,
    /// `vyoma.store=auto|off|/dev/NAME`: the disk holding the app store (deployed apps,
    /// their versions and data). `auto` (the default): `/dev/vda` if there is one.
    pub store: StoreDisk,
    /// `vyoma.display=auto|drm|fbdev|headless|off`: where the display goes. `auto` (the
    /// default): the KMS screen if the machine has one, else the framebuffer if it has
    /// one, else headless (composed in memory, for screenshots over the API).
    pub display: DisplayChoice,
    /// `vyoma.screen=WxH`: the screen's mode, if it has one of that size (else its
    /// preferred mode); headless, its size (1280x800 by default).
    pub screen: Option<Size>,
    /// `vyoma.layout=kiosk|grid|tiles:A,B`: how apps share the screen (`grid` by default).
    pub layout: Layout,
    /// `vyoma.bar=on|off`: the status bar along the top (on by default).
    pub bar: bool,
}

/// Where the display goes (`vyoma.display=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisplayChoice {
    /// The KMS screen if there is one, else the framebuffer, else headless.
    Auto,
    /// The KMS screen; without one, headless (and the console says why).
    Drm,
    /// The framebuffer device (`/dev/fb0`); without one, headless (and the console says
    /// why).
    Fbdev,
    /// Composed in memory only.
    Headless,
    /// No display: apps granted `display` are told there is none.
    Off,
}

/// Which disk holds the app store (`vyoma.store=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreDisk {
    /// The first virtio disk, if there is one.
    Auto,
    /// No store: the image's apps run as built, nothing can be deployed or updated.
    Off,
    /// This device (e.g. `/dev/vdb`).
    Device(String),
}

impl Default for BootOptions {
    fn default() -> Self {
        BootOptions {
            log: "warn".into(),
            apps: None,
            on_panic: PowerAction::Reboot,
            apps_dir: "/apps".into(),
            memory_budget: None,
            net: NetConfig::Off,
            api: DEFAULT_API.parse().ok(),
            http: DEFAULT_HTTP.parse().ok(),
            store: StoreDisk::Auto,
            display: DisplayChoice::Auto,
            screen: None,
            layout: Layout::Grid,
            bar: true,
        }
    }
}

/// `WxH`, each side 1 to 8192 pixels.
fn screen_size(value: &str) -> Option<Size> {
    let (w, h) = value.split_once('x')?;
    let side = |s: &str| s.parse::<u32>().ok().filter(|n| (1..=8192).contains(n));
    Some(Size::new(side(w)?, side(h)?))
}

/// `ADDR:PORT` to listen on, or `off` (`None`).
fn listen_addr(value: &str) -> Result<Option<SocketAddr>, ()> {
    match value {
        "off" => Ok(None),
        _ => value.parse().map(Some).map_err(|_| ()),
    }
}

/// Splits a command line into words; double quotes group words (as the kernel does).
fn words(cmdline: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// A key or value as quoted in a problem: escaped, so a problem stays one printable line
/// (a quoted kernel argument may hold newlines and control characters).
fn shown(s: &str) -> String {
    s.escape_default().to_string()
}

/// Parses the `vyoma.` options of a kernel command line. Returns the options and one
/// message per problem (each names the option and what to write instead).
pub fn parse(cmdline: &str) -> (BootOptions, Vec<String>) {
    let mut o = BootOptions::default();
    let mut problems = Vec::new();
    for w in words(cmdline) {
        let Some(opt) = w.strip_prefix("vyoma.") else { continue };
        let (key, value) = opt.split_once('=').unwrap_or((opt, ""));
        let (k, v) = (shown(key), shown(value));
        match key {
            "log" if !value.is_empty() => o.log = value.to_string(),
            "apps" => {
                let names: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(String::from)
                    .collect();
                if names.is_empty() {
                    problems.push("`vyoma.apps=` names no app: write `vyoma.apps=a,b` (all apps start)".into());
                } else {
                    o.apps = Some(names);
                }
            }
            "panic" => match value {
                "reboot" => o.on_panic = PowerAction::Reboot,
                "poweroff" => o.on_panic = PowerAction::PowerOff,
                _ => problems.push(format!(
                    "`vyoma.panic={v}` is not an action: write `vyoma.panic=reboot` or `vyoma.panic=poweroff` (using reboot)"
                )),
            },
            "dir" if value.starts_with('/') => o.apps_dir = value.to_string(),
            "memory" => match value.parse::<bytesize::ByteSize>() {
                Ok(b) if b.as_u64() > 0 => o.memory_budget = Some(b.as_u64()),
                _ => problems.push(format!(
                    "`vyoma.memory={v}` is not a size: write e.g. `vyoma.memory=384MiB` (using the machine's memory less an eighth)"
                )),
            },
            "net" => match net(value) {
                Ok(n) => o.net = n,
                Err(e) => problems.push(format!("`vyoma.net={v}`: {e} (the network stays off)")),
            },
            "api" => match listen_addr(value) {
                Ok(a) => o.api = a,
                Err(()) => problems.push(format!(
                    "`vyoma.api={v}` is not an address: write e.g. `vyoma.api=0.0.0.0:7443` or `vyoma.api=off` (using {DEFAULT_API})"
                )),
            },
            "http" => match listen_addr(value) {
                Ok(a) => o.http = a,
                Err(()) => problems.push(format!(
                    "`vyoma.http={v}` is not an address: write e.g. `vyoma.http=0.0.0.0:80` or `vyoma.http=off` (using {DEFAULT_HTTP})"
                )),
            },
            "store" => match value {
                "auto" => o.store = StoreDisk::Auto,
                "off" => o.store = StoreDisk::Off,
                d if d.starts_with("/dev/") && d.len() > 5 && !d.contains("..") => {
                    o.store = StoreDisk::Device(d.to_string());
                }
                _ => problems.push(format!(
                    "`vyoma.store={v}` is not a disk: write `vyoma.store=auto`, `vyoma.store=off` or `vyoma.store=/dev/vdb` (using auto)"
                )),
            },
            "display" => match value {
                "auto" => o.display = DisplayChoice::Auto,
                "drm" => o.display = DisplayChoice::Drm,
                "fbdev" => o.display = DisplayChoice::Fbdev,
                "headless" => o.display = DisplayChoice::Headless,
                "off" => o.display = DisplayChoice::Off,
                _ => problems.push(format!(
                    "`vyoma.display={v}` is not a display: write `vyoma.display=auto`, `drm`, `fbdev`, `headless` or `off` (using auto)"
                )),
            },
            "screen" => match screen_size(value) {
                Some(size) => o.screen = Some(size),
                None => problems.push(format!(
                    "`vyoma.screen={v}` is not a screen size: write e.g. `vyoma.screen=1280x800` (using the screen's preferred mode)"
                )),
            },
            "layout" => match value.parse::<Layout>() {
                Ok(l) => o.layout = l,
                Err(e) => problems.push(format!("`vyoma.layout`: {} (using grid)", shown(&e))),
            },
            "bar" => match value {
                "on" => o.bar = true,
                "off" => o.bar = false,
                _ => problems.push(format!("`vyoma.bar={v}`: write `vyoma.bar=on` or `vyoma.bar=off` (using on)")),
            },
            "log" | "dir" => problems.push(format!(
                "`vyoma.{k}={v}` needs a value{}: using {}",
                if key == "dir" { " that is an absolute path" } else { "" },
                if key == "dir" { &o.apps_dir } else { &o.log }
            )),
            _ => problems.push(format!(
                "unknown option `vyoma.{k}`: VyomaOS reads vyoma.log, vyoma.apps, vyoma.panic, vyoma.dir, vyoma.memory, vyoma.net, vyoma.api, vyoma.http, vyoma.store, vyoma.display, vyoma.screen, vyoma.layout and vyoma.bar"
            )),
        }
    }
    (o, problems)
}

#[cfg(test)]
mod tests {
    #[test]
    fn display_options_and_their_mistakes() {
        let (o, p) = parse("vyoma.display=drm vyoma.screen=1024x768 vyoma.layout=tiles:clock,paint vyoma.bar=off");
        assert_eq!(p, Vec::<String>::new());
        assert_eq!(o.display, DisplayChoice::Drm);
        assert_eq!(o.screen, Some(Size::new(1024, 768)));
        assert_eq!(o.layout, Layout::Tiles(vec!["clock".into(), "paint".into()]));
        assert!(!o.bar);
        let d = BootOptions::default();
        assert_eq!(
            (d.display, d.screen, d.layout, d.bar),
            (DisplayChoice::Auto, None, Layout::Grid, true)
        );
        let (o, p) = parse("vyoma.display=vga vyoma.screen=0x10 vyoma.layout=stack\x1b vyoma.bar=yes");
        assert_eq!(
            p,
            [
                "`vyoma.display=vga` is not a display: write `vyoma.display=auto`, `drm`, `fbdev`, `headless` or `off` (using auto)",
                "`vyoma.screen=0x10` is not a screen size: write e.g. `vyoma.screen=1280x800` (using the screen's preferred mode)",
                "`vyoma.layout`: `stack\\u{1b}` is not a layout: use `kiosk`, `grid` or `tiles:APP,APP,...` (using grid)",
                "`vyoma.bar=yes`: write `vyoma.bar=on` or `vyoma.bar=off` (using on)",
            ]
        );
        assert_eq!(o, BootOptions::default(), "every mistake keeps the default");
        assert_eq!(parse("vyoma.screen=9000x10").0.screen, None);
    }

    use super::*;

    #[test]
    fn the_memory_budget_is_a_size() {
        let (o, p) = parse("console=ttyS0 vyoma.memory=384MiB");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(o.memory_budget, Some(384 << 20));
        let (o, p) = parse("vyoma.memory=lots");
        assert_eq!(o.memory_budget, None);
        assert_eq!(
            p,
            [
                "`vyoma.memory=lots` is not a size: write e.g. `vyoma.memory=384MiB` (using the machine's memory less an eighth)"
            ]
        );
        assert_eq!(parse("vyoma.memory=0").1.len(), 1, "a budget of nothing is refused");
    }

    #[test]
    fn the_store_disk_is_auto_off_or_a_device() {
        assert_eq!(parse("").0.store, StoreDisk::Auto);
        assert_eq!(parse("vyoma.store=off").0.store, StoreDisk::Off);
        assert_eq!(
            parse("vyoma.store=/dev/vdb").0.store,
            StoreDisk::Device("/dev/vdb".into())
        );
        let (o, p) = parse("vyoma.store=/etc/../dev/vda");
        assert_eq!(o.store, StoreDisk::Auto);
        assert_eq!(
            p,
            [
                "`vyoma.store=/etc/../dev/vda` is not a disk: write `vyoma.store=auto`, `vyoma.store=off` or `vyoma.store=/dev/vdb` (using auto)"
            ]
        );
    }

    #[test]
    fn network_and_api_options() {
        let (o, p) = parse("vyoma.net=10.0.2.15/24,gw=10.0.2.2 vyoma.api=0.0.0.0:9443");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            o.net,
            NetConfig::Static {
                addr: Ipv4Addr::new(10, 0, 2, 15),
                prefix: 24,
                gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
                dev: None
            }
        );
        assert_eq!(o.api, Some("0.0.0.0:9443".parse().unwrap()));
        assert_eq!(
            parse("vyoma.net=dhcp,dev=eth1").0.net,
            NetConfig::Dhcp {
                dev: Some("eth1".into())
            }
        );
        assert_eq!(parse("vyoma.net=off vyoma.api=off").0.api, None);
        assert_eq!(parse("").0.net, NetConfig::Off);
        assert_eq!(parse("").0.api, Some(DEFAULT_API.parse().unwrap()));
        assert_eq!(parse("").0.http, Some(DEFAULT_HTTP.parse().unwrap()));
        assert_eq!(parse("vyoma.http=off").0.http, None);
        assert_eq!(
            parse("vyoma.http=0.0.0.0:8080").0.http,
            Some("0.0.0.0:8080".parse().unwrap())
        );
        for (bad, says) in [
            ("vyoma.net=10.0.2.15", "`10.0.2.15` is not ADDR/PREFIX"),
            ("vyoma.net=10.0.2.300/24", "`10.0.2.300` is not an IPv4 address"),
            ("vyoma.net=10.0.2.15/33", "`/33` is not a prefix length"),
            ("vyoma.net=10.0.2.15/24,gw=router", "`gw=router` is not an IPv4 address"),
            ("vyoma.net=dhcp,mtu=9000", "unknown part `mtu=9000`"),
            ("vyoma.api=everywhere", "`vyoma.api=everywhere` is not an address"),
            ("vyoma.http=80", "`vyoma.http=80` is not an address"),
        ] {
            let (o, p) = parse(bad);
            assert_eq!(p.len(), 1, "{bad}: {p:?}");
            assert!(p[0].contains(says), "{bad}: {}", p[0]);
            assert_eq!(o.net, NetConfig::Off, "{bad}");
        }
    }

    #[test]
    fn problems_stay_one_line_whatever_the_quotes_hold() {
        // Found by the fuzzer: a quoted word with a newline inside.
        let (_, p) = parse("vyoma.9\"vyo\u{18}\r\r\n\0-3og\"");
        assert_eq!(p.len(), 1);
        assert!(!p[0].contains('\n') && !p[0].chars().any(char::is_control), "{p:?}");
        assert!(p[0].starts_with("unknown option `vyoma.9vyo\\u{18}\\r\\r\\n"), "{p:?}");
    }

    #[test]
    fn reads_vyoma_options_and_ignores_the_kernels() {
        let (o, p) = parse("console=ttyS0 quiet panic=-1 vyoma.log=info vyoma.apps=echo,logger vyoma.panic=poweroff\n");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(o.log, "info");
        assert_eq!(o.apps, Some(vec!["echo".to_string(), "logger".to_string()]));
        assert_eq!(o.on_panic, PowerAction::PowerOff);
        assert_eq!(o.apps_dir, "/apps");
        assert_eq!(parse("").0, BootOptions::default());
    }

    #[test]
    fn quotes_group_words() {
        assert_eq!(words(r#"a "b c" d"e f"g """#), ["a", "b c", "de fg", ""]);
        let (o, p) = parse(r#"vyoma.log="vyoma_supervisor=debug,warn""#);
        assert!(p.is_empty());
        assert_eq!(o.log, "vyoma_supervisor=debug,warn");
    }

    /// The deterministic counterpart of `fuzz/fuzz_targets/kernel_cmdline.rs`.
    #[test]
    fn random_command_lines_never_panic_and_stay_usable() {
        let pieces = [
            "vyoma.",
            "log",
            "apps",
            "panic",
            "dir",
            "=",
            ",",
            "\"",
            " ",
            "\n",
            "/",
            "reboot",
            "é",
            "\0",
            "vyoma.apps=",
            "x",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut line = String::new();
            for _ in 0..(state % 12) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                line.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            let (o, problems) = parse(&line);
            assert!(o.apps_dir.starts_with('/'), "{line:?}");
            assert!(!o.log.is_empty(), "{line:?}");
            for p in problems {
                assert!(!p.contains('\n') && p.contains("vyoma."), "{line:?}: {p}");
            }
        }
    }

    #[test]
    fn mistakes_are_reported_and_defaults_kept() {
        let (o, p) = parse("vyoma.panic=explode vyoma.apps= vyoma.dir=apps vyoma.colour=blue vyoma.log");
        assert_eq!(o, BootOptions::default());
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(p[0].contains("`vyoma.panic=explode` is not an action"), "{}", p[0]);
        assert!(p[1].contains("names no app"), "{}", p[1]);
        assert!(p[2].contains("absolute path"), "{}", p[2]);
        assert!(p[3].contains("unknown option `vyoma.colour`"), "{}", p[3]);
        assert!(p[4].contains("`vyoma.log=` needs a value"), "{}", p[4]);
    }
}
