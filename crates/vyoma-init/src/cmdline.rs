//! VyomaOS options on the kernel command line (`vyoma.KEY=VALUE`). Other parameters are
//! the kernel's and are ignored; a malformed `vyoma.` option is reported and its default
//! used, so a typo never stops the machine from booting.

use crate::sys::PowerAction;

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
}

impl Default for BootOptions {
    fn default() -> Self {
        BootOptions {
            log: "warn".into(),
            apps: None,
            on_panic: PowerAction::Reboot,
            apps_dir: "/apps".into(),
            memory_budget: None,
        }
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
            "log" | "dir" => problems.push(format!(
                "`vyoma.{k}={v}` needs a value{}: using {}",
                if key == "dir" { " that is an absolute path" } else { "" },
                if key == "dir" { &o.apps_dir } else { &o.log }
            )),
            _ => problems.push(format!(
                "unknown option `vyoma.{k}`: VyomaOS reads vyoma.log, vyoma.apps, vyoma.panic, vyoma.dir and vyoma.memory"
            )),
        }
    }
    (o, problems)
}

#[cfg(test)]
mod tests {
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
