//! The configuration file: what loads, and the error (field and line) for what does not.

use dr_core::{MacAddr, Protocol, SchedulerKind, ServiceKey};
use dr_examples::LineError;
use dr_examples::config::{LoadOptions, load, load_all};
use std::time::Duration;

const OPTIONS: LoadOptions = LoadOptions {
    hash_seed: [1, 2, 3, 4],
    require_real_macs: true,
    default_mac: None,
    default_capacity: None,
};

const VALID: &str = r#"
[director]
mac = "02:00:00:00:00:01"
capacity = 4096
decrement_ttl = true
expire_nodest_conn = true
icmp_port_unreachable = true

[timeouts]
tcp = 600
udp = 60

[[service]]
proto = "tcp"
vip = "10.0.0.100"
port = 80
scheduler = "rr"
persistent = 0

[service.health]
kind = "http"
interval = 2
path = "/health"
expect = 200

[[service.real]]
ip = "10.0.0.11"
weight = 3
mac = "02:00:00:00:00:11"

[[service.real]]
ip = "10.0.0.12"
mac = "02:00:00:00:00:12"
u_threshold = 0

[[service]]
proto = "udp"
vip = "2001:db8::100"
port = 53
scheduler = "rr"

[[service.real]]
ip = "2001:db8::11"
mac = "02:00:00:00:00:11"
"#;

#[test]
fn a_full_file_loads() {
    let d = load(VALID, OPTIONS).unwrap();
    assert_eq!(d.config().mac, MacAddr([2, 0, 0, 0, 0, 1]));
    assert_eq!(d.capacity(), 4096);
    assert!(d.config().decrement_ttl);
    assert!(d.config().expire_nodest_conn && d.config().icmp_port_unreachable);
    let t = d.timeouts().settings();
    assert_eq!((t.tcp, t.tcpfin, t.udp), (600, 120, 60));
    let web = d
        .find_service(&ServiceKey {
            protocol: Protocol::Tcp,
            vip: "10.0.0.100".parse().unwrap(),
            port: 80,
        })
        .unwrap();
    let service = d.service(web).unwrap();
    assert_eq!(service.scheduler(), SchedulerKind::Rr);
    // Added in the order listed: the kernel's list is newest first.
    let addrs: Vec<String> =
        service.reals().iter().map(|&r| d.real(r).unwrap().addr().to_string()).collect();
    assert_eq!(addrs, ["10.0.0.12", "10.0.0.11"]);
    assert_eq!(d.real(service.reals()[1]).unwrap().weight(), 3);
    assert_eq!(d.services().count(), 2);
}

fn error(text: &str) -> LineError {
    load(text, OPTIONS).unwrap_err()
}

fn replace(from: &str, to: &str) -> String {
    assert!(VALID.contains(from), "{from}");
    VALID.replacen(from, to, 1)
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn errors_name_the_field_and_the_line() {
    let cases: &[(&str, &str, &str, &str)] = &[
        // (replace this, with this, the error mentions, on the line containing)
        ("capacity = 4096", "capacity = 4096\nbogus = 1", "bogus", "bogus = 1"),
        (
            "mac = \"02:00:00:00:00:01\"",
            "mac = \"02:00:00:00:00\"",
            "[director] mac",
            "mac = \"02:00:00:00:00\"",
        ),
        (
            "vip = \"10.0.0.100\"",
            "vip = \"10.0.0.300\"",
            "service 1 (10.0.0.300:80): vip = \"10.0.0.300\" is not",
            "10.0.0.300",
        ),
        (
            "proto = \"tcp\"",
            "proto = \"sctp\"",
            "service 1 (10.0.0.100:80): proto = \"sctp\"",
            "sctp",
        ),
        (
            "scheduler = \"rr\"\npersistent",
            "scheduler = \"fair\"\npersistent",
            "service 1 (10.0.0.100:80): scheduler = \"fair\"",
            "fair",
        ),
        (
            "persistent = 0",
            "persistent = 0\nnetmask = \"255.255.255.0\"",
            "needs persistence",
            "netmask",
        ),
        (
            "persistent = 0",
            "persistent = 360\nnetmask = \"255.0.255.0\"",
            "not contiguous",
            "netmask",
        ),
        (
            "persistent = 0",
            "persistent = 9999999",
            "service 1 (10.0.0.100:80): persistent 9999999 is out of range: give 0 to 2678400",
            "persistent = 9999999",
        ),
        (
            "capacity = 4096",
            "capacity = 4096\nconn_reuse_mode = 7",
            "conn_reuse_mode 7",
            "conn_reuse",
        ),
        ("weight = 3", "weight = 3000000000", "weight", "weight = 3000000000"),
        (
            "mac = \"02:00:00:00:00:12\"",
            "mac = \"01:00:5e:00:00:12\"",
            "service 1 (10.0.0.100:80), real server 2 (10.0.0.12): real server mac 01:00:5e",
            "01:00:5e:00:00:12",
        ),
        (
            "ip = \"10.0.0.12\"",
            "ip = \"10.0.0.11\"",
            "already in this service",
            "ip = \"10.0.0.11\"\nmac = \"02:00:00:00:00:12\"",
        ),
        (
            "u_threshold = 0",
            "l_threshold = 5",
            "l_threshold 5 is above u_threshold 0",
            "l_threshold = 5",
        ),
        (
            "persistent = 0",
            "persistent = 0\nflags = [\"sh-port\", \"sh-bogus\"]",
            "service 1 (10.0.0.100:80): flags = \"sh-port\": a flag of the sh scheduler",
            "flags = [",
        ),
        (
            "kind = \"http\"",
            "kind = \"icmp\"",
            "service 1 (10.0.0.100:80): health.kind",
            "kind = \"icmp\"",
        ),
        (
            "path = \"/health\"",
            "path = \"health\"",
            "service 1 (10.0.0.100:80): health.path",
            "path = \"health\"",
        ),
        ("port = 80", "port = 80000", "", "port = 80000"),
        ("capacity = 4096", "capacity = 0", "capacity", "capacity = 0"),
        (
            "tcp = 600",
            "tcp = 9999999",
            "[timeouts] tcp 9999999 is out of range: give 0 to",
            "tcp = 9999999",
        ),
    ];
    for (from, to, mentions, on_line) in cases {
        let text = replace(from, to);
        let err = error(&text);
        assert!(err.message.contains(mentions), "{to}: {err}");
        let first_line_of_needle = on_line.lines().next().unwrap();
        let expected = if *on_line == "ip = \"10.0.0.11\"\nmac = \"02:00:00:00:00:12\"" {
            // the second real server, now also .11
            text.lines()
                .enumerate()
                .filter(|(_, l)| l.contains("ip = \"10.0.0.11\""))
                .nth(1)
                .unwrap()
                .0
                + 1
        } else {
            line_of(&text, first_line_of_needle)
        };
        assert_eq!(err.line, Some(expected), "{to}: {err}");
    }
}

#[test]
fn a_replay_needs_every_mac_and_a_director_mac() {
    let text = replace("mac = \"02:00:00:00:00:12\"\n", "");
    let err = error(&text);
    assert!(
        err.message
            .contains("service 1 (10.0.0.100:80), real server 2 (10.0.0.12): mac is missing"),
        "{err}"
    );
    let learn = LoadOptions { require_real_macs: false, ..OPTIONS };
    assert!(load(&text, learn).is_ok(), "a live director may learn it");
    let no_mac = replace("mac = \"02:00:00:00:00:01\"\n", "");
    assert!(error(&no_mac).message.contains("[director] mac is missing"));
    let given = LoadOptions { default_mac: Some(MacAddr([2, 0, 0, 0, 0, 9])), ..OPTIONS };
    assert_eq!(load(&no_mac, given).unwrap().config().mac, MacAddr([2, 0, 0, 0, 0, 9]));
}

#[test]
fn defaults_flags_and_thresholds() {
    let text =
        replace("scheduler = \"rr\"\npersistent = 0\n", "flags = [\"flag-2\", \"flag-1\"]\n");
    let text = text.replacen("u_threshold = 0", "u_threshold = 100\nl_threshold = 50", 1);
    let d = load(&text, OPTIONS).unwrap();
    let web = d
        .find_service(&ServiceKey {
            protocol: Protocol::Tcp,
            vip: "10.0.0.100".parse().unwrap(),
            port: 80,
        })
        .unwrap();
    let service = d.service(web).unwrap();
    assert_eq!(service.scheduler(), SchedulerKind::Wlc, "wlc is the default, as in ipvsadm");
    assert_eq!(
        service.flags(),
        dr_core::SchedFlags { sh_port: true, sh_fallback: true, ..dr_core::SchedFlags::NONE }
    );
    let twelve = d.real(service.reals()[0]).unwrap();
    assert_eq!(twelve.thresholds(), (100, 50));
}

#[test]
fn the_reference_configuration_loads() {
    let text = include_str!("../director.toml");
    let d = load(text, OPTIONS).unwrap();
    assert_eq!(d.services().count(), 1);
    assert_eq!(d.timeouts().settings(), dr_core::TimeoutSettings::default());
}

#[test]
fn persistence_and_the_lifecycle_knobs() {
    let text = r#"
[director]
mac = "02:00:00:00:00:01"
conn_reuse_mode = 2
expire_quiescent_template = true
icmp_echo = false
run_estimation = false
fragment_capacity = 64
fragment_timeout = 2

[[service]]
proto = "tcp"
vip = "10.0.0.100"
port = 0
scheduler = "rr"
persistent = 600
netmask = "255.255.255.0"

[[service.real]]
ip = "10.0.0.11"
mac = "02:00:00:00:00:11"

[[service]]
proto = "udp"
vip = "2001:db8::100"
port = 53
persistent = 60
netmask = 64

[[service.real]]
ip = "2001:db8::11"
mac = "02:00:00:00:00:11"
"#;
    let d = load(text, OPTIONS).unwrap();
    let c = d.config();
    assert_eq!(c.conn_reuse_mode, 2);
    assert!(c.expire_quiescent_template && !c.icmp_echo && !c.run_estimation);
    assert_eq!((c.fragment_capacity, c.fragment_timeout.as_secs()), (64, 2));
    let persistence: Vec<_> = d.services().map(|(_, s)| s.persistence().unwrap()).collect();
    assert_eq!(
        persistence,
        [
            dr_core::Persistence::new(600).with_prefix_len(24),
            dr_core::Persistence::new(60).with_prefix_len(64)
        ]
    );
    let listing = d.listing(dr_core::ListingFormat::Plain).to_string();
    assert!(
        listing.contains("TCP  10.0.0.100:0 rr persistent 600 mask 255.255.255.0\n"),
        "{listing}"
    );
    assert!(listing.contains("UDP  [2001:db8::100]:53 wlc persistent 60 mask 64\n"), "{listing}");
}

#[test]
fn the_vlans_served_are_configured() {
    use dr_core::wire::VlanTag;
    let tag = |id| VlanTag { tpid: 0x8100, id };
    let with =
        |vlans: &str| replace("capacity = 4096", &format!("capacity = 4096\nvlans = {vlans}"));
    // The default: the untagged LAN only.
    let d = load(VALID, OPTIONS).unwrap();
    assert!(d.config().vlans.serves(&[]) && !d.config().vlans.serves(&[tag(10)]));
    let d = load(&with("[10, \"100.20\"]"), OPTIONS).unwrap();
    let vlans = &d.config().vlans;
    assert!(!vlans.serves(&[]), "0 is not listed, so not the untagged LAN");
    assert!(vlans.serves(&[tag(10)]) && vlans.serves(&[tag(100), tag(20)]));
    assert!(!vlans.serves(&[tag(20)]));
    let d = load(&with("[\"any\"]"), OPTIONS).unwrap();
    assert!(d.config().vlans.is_any());
    for (vlans, says) in [
        ("[4095]", "VLAN 4095 is out of range"),
        ("[-1]", "VLAN -1"),
        ("[\"10\"]", "\"10\": give VLAN numbers"),
        ("[\"0.10\"]", "VLAN 0 is out of range"),
        ("[\"any\", 10]", "\"any\" stands alone"),
        ("[]", "director.vlans is empty"),
        ("[1.5]", "1.5: give VLAN numbers"),
    ] {
        let err = error(&with(vlans));
        assert!(err.message.contains("director.vlans"), "{vlans}: {err}");
        assert!(err.message.contains(says), "{vlans}: {err}");
        assert!(err.line.is_some(), "{vlans}: {err}");
    }
}

#[test]
fn one_weight_range_for_the_file_the_rules_and_ctl() {
    // ipvsadm takes weights 0 to 65535 (`-w`, string_to_number(optarg, 0, 65535)).
    let d = load(&replace("weight = 3", "weight = 65535"), OPTIONS).unwrap();
    let (_, web) = d.services().next().unwrap();
    assert!(web.reals().iter().any(|&r| d.real(r).unwrap().weight() == 65535));
    for weight in ["65536", "3000000000", "-1"] {
        let text = replace("weight = 3", &format!("weight = {weight}"));
        let err = error(&text);
        assert_eq!(err.line, Some(line_of(&text, "weight = ")), "{weight}: {err}");
        let place = "service 1 (10.0.0.100:80), real server 1 (10.0.0.11)";
        assert!(err.message.contains(&format!("{place}: weight {weight}")), "{weight}: {err}");
        assert!(err.message.contains("0 to 65535"), "{weight}: {err}");
    }

    use dr_examples::ipvsadm::{Macs, apply, parse};
    let mut d = load(VALID, OPTIONS).unwrap();
    let macs = Macs::default();
    let ctl = |d: &mut dr_core::Director, line: &str| {
        apply(d, &parse(line)?, &macs, dr_core::Instant::ZERO)
    };
    ctl(&mut d, "-e -t 10.0.0.100:80 -r 10.0.0.11 -w 65535").unwrap();
    ctl(&mut d, "-a -t 10.0.0.100:80 -r 10.0.0.13 -w 0").unwrap();
    for line in
        ["-e -t 10.0.0.100:80 -r 10.0.0.11 -w 65536", "-a -t 10.0.0.100:80 -r 10.0.0.14 -w -1"]
    {
        let err = ctl(&mut d, line).unwrap_err();
        assert!(err.contains("-w") && err.contains("0 to 65535"), "{line}: {err}");
    }
}

#[test]
fn health_checks_fit_their_service() {
    use dr_examples::config::load_all;
    use dr_examples::health::Probe;
    let checks = |text: &str| {
        let loaded = load_all(text, OPTIONS).unwrap();
        let d = loaded.director;
        loaded
            .health
            .into_iter()
            .map(|(id, check)| (d.service(id).unwrap().key().protocol, check))
            .collect::<Vec<_>>()
    };
    // A UDP service without [service.health] gets a UDP check, not a TCP connect.
    let all = checks(VALID);
    let udp = all.iter().find(|(p, _)| *p == Protocol::Udp).unwrap();
    assert_eq!(udp.1.probe, Probe::Udp { payload: Vec::new(), expect_reply: false });
    let udp_section = "port = 53\nscheduler = \"rr\"\n";
    let with_udp_health = |health: &str| {
        replace(udp_section, &format!("{udp_section}\n[service.health]\n{health}\n"))
    };
    let all = checks(&with_udp_health("kind = \"udp\"\npayload = \"ping\"\nexpect_reply = true"));
    let udp = all.iter().find(|(p, _)| *p == Protocol::Udp).unwrap();
    assert_eq!(udp.1.probe, Probe::Udp { payload: b"ping".to_vec(), expect_reply: true });
    // Checks that do not fit are refused, naming the field and the line.
    for (health, says) in [
        ("kind = \"tcp\"", "kind = \"tcp\" does not fit a UDP service"),
        ("kind = \"http\"", "kind = \"http\" does not fit a UDP service"),
        ("kind = \"udp\"\npath = \"/\"", "health.path does not apply"),
        ("kind = \"udp\"\nthrough_vip = true", "through_vip does not apply"),
    ] {
        let text = with_udp_health(health);
        let err = error(&text);
        assert!(err.message.contains(says), "{health}: {err}");
        assert!(err.line.is_some(), "{health}: {err}");
    }
    let err = error(&replace(
        "kind = \"http\"\ninterval = 2\npath = \"/health\"\nexpect = 200\n",
        "kind = \"udp\"\n",
    ));
    assert!(err.message.contains("does not fit a TCP service"), "{err}");
    let err = error(&replace("kind = \"http\"", "kind = \"http\"\nthrough_vip = true"));
    assert!(err.message.contains("through_vip does not apply to kind = \"http\""), "{err}");
    let http = "kind = \"http\"\ninterval = 2\npath = \"/health\"\nexpect = 200\n";
    let through = checks(&replace(http, "kind = \"tcp\"\nthrough_vip = true\n"));
    assert!(through.iter().any(|(_, c)| c.through_vip && c.probe == Probe::Tcp));
}

/// A file of one service and two real servers, without `[director]`.
const BARE: &str = r#"
[[service]]
proto = "tcp"
vip = "10.0.0.100"
port = 80

[[service.real]]
ip = "10.0.0.11"

[[service.real]]
ip = "10.0.0.12"
weight = 1
"#;

const LIVE: LoadOptions = LoadOptions {
    hash_seed: [1, 2, 3, 4],
    require_real_macs: false,
    default_mac: Some(MacAddr([2, 0, 0, 0, 0, 9])),
    default_capacity: None,
};

fn live_error(text: &str) -> LineError {
    load(text, LIVE).unwrap_err()
}

#[test]
fn the_director_section_is_optional_where_the_interface_gives_the_mac() {
    let d = load(BARE, LIVE).unwrap();
    assert_eq!(d.config().mac, MacAddr([2, 0, 0, 0, 0, 9]));
    assert_eq!(d.services().count(), 1);
    // A replay has no interface: it needs [director] mac, and says so.
    let replay = LoadOptions { default_mac: None, ..LIVE };
    let err = load(BARE, replay).unwrap_err();
    assert!(err.message.starts_with("[director] mac is missing"), "{err}");
    assert!(err.message.contains("[director] mac = \"02:00:00:00:00:01\""), "{err}");
}

#[test]
fn range_and_type_errors_name_the_place_in_plain_words() {
    let real2 = "service 1 (10.0.0.100:80), real server 2 (10.0.0.12)";
    let cases: &[(&str, &str, &str)] = &[
        // (replace this, with this, the whole message)
        (
            "weight = 1",
            "weight = 70000",
            "service 1 (10.0.0.100:80), real server 2 (10.0.0.12): weight 70000 is out of \
             range: give 0 to 65535",
        ),
        ("weight = 1", "weight = \"3\"", &format!("{real2}: weight = \"3\": give a whole number")),
        ("weight = 1", "weight = 1.5", &format!("{real2}: weight = 1.5: give a whole number")),
        (
            "weight = 1",
            "u_threshold = -5",
            &format!("{real2}: u_threshold -5 is out of range: give 0 to 2147483647"),
        ),
        (
            "weight = 1",
            "bogus = 2",
            &format!(
                "{real2}: unknown field bogus: expected one of ip, weight, mac, u_threshold, \
                 l_threshold"
            ),
        ),
        (
            "port = 80",
            "port = 80000",
            "service 1 (10.0.0.100): port 80000 is out of range: give 0 to 65535",
        ),
        (
            "port = 80",
            "port = \"80\"",
            "service 1 (10.0.0.100): port = \"80\": give a whole number",
        ),
        (
            "port = 80",
            "port = 80\npersistent = -1",
            "service 1 (10.0.0.100:80): persistent -1 is out of range: give 0 to 2678400",
        ),
        (
            "port = 80",
            "port = 80\n[service.health]\ninterval = -1",
            "service 1 (10.0.0.100:80): health.interval -1 is out of range: give 0 to 4294967295",
        ),
        (
            "[[service]]",
            "[director]\ncapacity = -1\n[[service]]",
            "[director] capacity -1 is out of range: give 1 to 1073741824",
        ),
        (
            "[[service]]",
            "[director]\ndecrement_ttl = 1\n[[service]]",
            "[director] decrement_ttl = 1: give true or false",
        ),
        (
            "[[service]]",
            "[timeouts]\ntcp = \"x\"\n[[service]]",
            "[timeouts] tcp = \"x\": give a whole number",
        ),
    ];
    for (from, to, says) in cases {
        assert!(BARE.contains(from), "{from}");
        let text = BARE.replacen(from, to, 1);
        let err = live_error(&text);
        assert_eq!(err.message, *says, "{to}");
        let value = to.lines().rev().find(|l| l.contains(" = ")).unwrap();
        assert_eq!(err.line, Some(line_of(&text, value)), "{to}: {err}");
    }
    let err = live_error(&BARE.replacen("vip = \"10.0.0.100\"\n", "", 1));
    assert_eq!(err.message, "service 1: vip is missing");
}

#[test]
fn addresses_that_cannot_be_vips_or_real_servers_are_refused_with_the_reason() {
    let vip = |ip: &str| BARE.replacen("vip = \"10.0.0.100\"", &format!("vip = \"{ip}\""), 1);
    for (ip, why) in [
        ("127.0.0.1", "is loopback (127.0.0.0/8)"),
        ("0.0.0.0", "is unspecified"),
        ("0.1.2.3", "is unspecified (0.0.0.0/8, this network)"),
        ("224.0.0.1", "is multicast (224.0.0.0/4)"),
        ("255.255.255.255", "is the broadcast address"),
    ] {
        let text = vip(ip);
        let err = live_error(&text);
        assert!(err.message.contains(&format!("vip {ip} {why}")), "{ip}: {err}");
        assert!(err.message.starts_with("service 1 ("), "{ip}: {err}");
        assert_eq!(err.line, Some(line_of(&text, "vip = ")), "{ip}: {err}");
    }
    let v6 = r#"
[[service]]
proto = "udp"
vip = "VIP"
port = 53

[[service.real]]
ip = "REAL"
"#;
    for (vip, real, says) in [
        ("::1", "2001:db8::11", "vip ::1 is loopback (::1)"),
        ("ff02::1", "2001:db8::11", "vip ff02::1 is multicast (ff00::/8)"),
        ("2001:db8::100", "::1", "real server address ::1 is loopback (::1)"),
        ("2001:db8::100", "fe80::11", "real server address fe80::11 is link-local (fe80::/10)"),
        ("2001:db8::100", "ff05::2", "real server address ff05::2 is multicast"),
    ] {
        let err = live_error(&v6.replace("VIP", vip).replace("REAL", real));
        assert!(err.message.contains(says), "{vip} {real}: {err}");
    }
    let real = |ip: &str| BARE.replacen("ip = \"10.0.0.12\"", &format!("ip = \"{ip}\""), 1);
    for (ip, why) in [
        ("127.0.0.2", "is loopback (127.0.0.0/8), the director's own host"),
        ("239.1.1.1", "is multicast"),
        ("10.0.0.100", "is a VIP of this director"),
    ] {
        let text = real(ip);
        let err = live_error(&text);
        assert!(
            err.message.starts_with(&format!("service 1 (10.0.0.100:80), real server 2 ({ip}): ")),
            "{ip}: {err}"
        );
        assert!(err.message.contains(&format!("real server address {ip} {why}")), "{ip}: {err}");
        let line = text.lines().position(|l| l == format!("ip = \"{ip}\"")).unwrap() + 1;
        assert_eq!(err.line, Some(line), "{ip}: {err}");
    }
    // A VIP that is a real server of an earlier service.
    let text = format!("{BARE}\n[[service]]\nproto = \"tcp\"\nvip = \"10.0.0.11\"\nport = 443\n");
    let err = live_error(&text);
    assert!(
        err.message.starts_with("service 2 (10.0.0.11:443): vip 10.0.0.11 is a real server"),
        "{err}"
    );
    assert_eq!(err.line, Some(line_of(&text, "vip = \"10.0.0.11\"")), "{err}");
}

#[test]
fn mh_flags_and_table_size() {
    let text = replace(
        "scheduler = \"rr\"\npersistent = 0\n",
        "scheduler = \"mh\"\nflags = [\"mh-fallback\"]\n",
    )
    .replacen("capacity = 4096", "capacity = 4096\nmh_table_size = 65521", 1);
    let d = load(&text, OPTIONS).unwrap();
    assert_eq!(d.config().mh_table_size, 65521);
    let (_, service) = d.services().find(|(_, s)| s.scheduler() == SchedulerKind::Mh).unwrap();
    assert_eq!(
        service.flags(),
        dr_core::SchedFlags { mh_fallback: true, ..dr_core::SchedFlags::NONE }
    );
    let listing = d.listing(dr_core::ListingFormat::Plain).to_string();
    assert!(listing.contains("TCP  10.0.0.100:80 mh (mh-fallback)\n"), "{listing}");
    let json = d.listing(dr_core::ListingFormat::Json).to_string();
    assert!(json.contains(r#""scheduler":"mh","flags":"mh-fallback""#), "{json}");
    // A size the kernel cannot have, and a flag of another scheduler, name their line.
    let bad = text.replacen("mh_table_size = 65521", "mh_table_size = 65537", 1);
    let err = error(&bad);
    assert_eq!(err.line, Some(line_of(&bad, "mh_table_size")), "{err}");
    assert!(err.message.contains("65521") && err.message.contains("4093"), "{err}");
    let bad = text.replacen("[\"mh-fallback\"]", "[\"sh-port\"]", 1);
    let err = error(&bad);
    assert_eq!(err.line, Some(line_of(&bad, "sh-port")), "{err}");
    assert!(err.message.contains("\"sh-port\": a flag of the sh scheduler, not of mh"), "{err}");
}

#[test]
fn lblc_expirations() {
    let text = replace("scheduler = \"rr\"\n", "scheduler = \"lblcr\"\n").replacen(
        "capacity = 4096",
        "capacity = 4096\nlblc_expiration = 600\nlblcr_expiration = 120",
        1,
    );
    let d = load(&text, OPTIONS).unwrap();
    assert_eq!(d.config().lblc_expiration, Duration::from_secs(600));
    assert_eq!(d.config().lblcr_expiration, Duration::from_secs(120));
    assert!(d.services().any(|(_, s)| s.scheduler() == SchedulerKind::Lblcr));
    let bad = text.replacen("lblcr_expiration = 120", "lblcr_expiration = 4000000", 1);
    let err = error(&bad);
    assert_eq!(err.line, Some(line_of(&bad, "lblcr_expiration")), "{err}");
    assert!(err.message.contains("director.lblcr_expiration = 4000000 is too long"), "{err}");
}

#[test]
fn sloppy_tcp_the_announce_delay_and_each_services_quorum() {
    use dr_examples::config::{DEFAULT_ANNOUNCE_DELAY, load_all};
    let loaded = load_all(VALID, OPTIONS).unwrap();
    assert!(!loaded.config.sloppy_tcp, "off by default, as the kernel's sysctl");
    assert_eq!(loaded.routes.announce_delay, DEFAULT_ANNOUNCE_DELAY);
    assert_eq!(DEFAULT_ANNOUNCE_DELAY, Duration::from_secs(5));
    assert!(loaded.routes.quorum.is_empty(), "every service needs 1 unless told");

    let text =
        replace("icmp_port_unreachable = true\n", "sloppy_tcp = true\nannounce_delay = 30\n")
            .replace("persistent = 0\n", "persistent = 0\nquorum = 2\n");
    let loaded = load_all(&text, OPTIONS).unwrap();
    assert!(loaded.config.sloppy_tcp);
    assert!(loaded.director.config().sloppy_tcp);
    assert_eq!(loaded.routes.announce_delay, Duration::from_secs(30));
    let web = loaded.director.find_service(&ServiceKey {
        protocol: Protocol::Tcp,
        vip: "10.0.0.100".parse().unwrap(),
        port: 80,
    });
    assert_eq!(loaded.routes.quorum, [(web.unwrap(), 2)]);

    let quorum =
        |n: &str| error(&replace("persistent = 0\n", &format!("persistent = 0\nquorum = {n}\n")));
    let err = quorum("3");
    assert_eq!(err.line, Some(line_of(VALID, "persistent = 0") + 1));
    assert_eq!(
        err.message,
        "service 1 (10.0.0.100:80): quorum = 3 is more than the service's 2 real servers: its \
         VIP would never be announced; lower it or add real servers"
    );
    assert_eq!(
        quorum("0").message,
        "service 1 (10.0.0.100:80): quorum 0 is out of range: give 1 to 65535"
    );
    let err = error(&replace("icmp_port_unreachable = true\n", "announce_delay = 3601\n"));
    assert_eq!(err.message, "[director] announce_delay 3601 is out of range: give 0 to 3600");
    let err = error(&replace("icmp_port_unreachable = true\n", "sloppy_tcp = 1\n"));
    assert!(err.message.contains("sloppy_tcp"), "{}", err.message);
}

#[test]
fn ops_on_a_service() {
    let text = r#"
[director]
mac = "02:00:00:00:00:01"
capacity = 16

[[service]]
proto = "udp"
vip = "10.0.0.100"
port = 53
scheduler = "rr"
ops = true

[[service.real]]
ip = "10.0.0.11"
mac = "02:00:00:00:00:11"

[[service]]
proto = "udp"
vip = "10.0.0.100"
port = 54
ops = false

[[service]]
proto = "tcp"
vip = "10.0.0.100"
port = 80
ops = true
"#;
    let loaded = load_all(text, OPTIONS).unwrap();
    // The kernel takes the flag on TCP too, and it changes nothing there (only UDP
    // datagrams are scheduled one by one): left off, as keepalived does, and warned of.
    assert_eq!(
        loaded.director.listing(dr_core::ListingFormat::Plain).to_string(),
        "IP Virtual Server version 1.2.1 (size=16)\n\
         Prot LocalAddress:Port Scheduler Flags\n  \
         -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
         TCP  10.0.0.100:80 wlc\n\
         UDP  10.0.0.100:53 rr ops\n  \
         -> 10.0.0.11:53                 Route   1      0          0         \n\
         UDP  10.0.0.100:54 wlc\n"
    );
    let warned: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warned,
        [format!(
            "line {}: service 3 (10.0.0.100:80): ops = true on a TCP service is not applied: \
             one-packet scheduling is for UDP datagrams only (the kernel takes the flag and \
             ignores it for TCP; ipvsadm refuses it, keepalived resets it); remove it, or set \
             proto = \"udp\"",
            text.lines().count()
        )]
    );
    let e = load(&text.replace("ops = false", "ops = \"yes\""), OPTIONS).unwrap_err();
    assert_eq!(e.line, Some(line_of(text, "ops = false")));
    assert_eq!(e.message, "service 2 (10.0.0.100:54): ops = \"yes\": give true or false");
    // No warning for what has an effect.
    assert!(load_all(VALID, OPTIONS).unwrap().warnings.is_empty());
}

#[test]
fn the_resync_wait_defaults_to_15_s_and_is_bounded() {
    use dr_examples::config::DEFAULT_RESYNC_WAIT;
    let loaded = load_all(VALID, OPTIONS).unwrap();
    assert_eq!(loaded.routes.resync_wait, DEFAULT_RESYNC_WAIT);
    assert_eq!(DEFAULT_RESYNC_WAIT, Duration::from_secs(15));
    let text = replace("icmp_port_unreachable = true\n", "resync_wait = 0\n");
    assert_eq!(load_all(&text, OPTIONS).unwrap().routes.resync_wait, Duration::ZERO);
    let bad = replace("icmp_port_unreachable = true\n", "resync_wait = 3601\n");
    let err = error(&bad);
    assert_eq!(err.message, "[director] resync_wait 3601 is out of range: give 0 to 3600");
    assert_eq!(err.line, Some(line_of(&bad, "resync_wait")));
    let err = error(&replace("icmp_port_unreachable = true\n", "resync_wait = -1\n"));
    assert_eq!(err.message, "[director] resync_wait -1 is out of range: give 0 to 3600");
}
