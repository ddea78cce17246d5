//! `ipvsadm-save -n` rules: what loads, and the line of what does not.

use dr_core::{Config, MacAddr, Protocol, SchedulerKind, ServiceKey};
use dr_examples::rules::{RulesOptions, load, parse_neighbour};
use std::collections::HashMap;

fn options() -> RulesOptions {
    let neighbours: HashMap<_, _> = [
        "10.0.0.11=02:00:00:00:00:11",
        "10.0.0.12=02:00:00:00:00:12",
        "2001:db8::11=02:00:00:00:00:11",
    ]
    .iter()
    .map(|s| parse_neighbour(s).unwrap())
    .collect();
    RulesOptions {
        config: Config::new(MacAddr([2, 0, 0, 0, 0, 1]), [1, 2, 3, 4]),
        neighbours,
        require_real_macs: true,
    }
}

const SAVED: &str = "\
# ipvsadm-save -n
-A -t 10.0.0.100:80 -s rr
-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 3
-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 0

--add-service --udp-service [2001:db8::100]:53 --scheduler rr
--add-server --udp-service [2001:db8::100]:53 --real-server [2001:db8::11] --gatewaying --weight 1
";

#[test]
fn saved_rules_load() {
    let d = load(SAVED, &options()).unwrap();
    let key = ServiceKey { protocol: Protocol::Tcp, vip: "10.0.0.100".parse().unwrap(), port: 80 };
    let web = d.service(d.find_service(&key).unwrap()).unwrap();
    assert_eq!(web.scheduler(), SchedulerKind::Rr);
    let reals: Vec<(String, u32)> = web
        .reals()
        .iter()
        .map(|&r| d.real(r).unwrap())
        .map(|r| (r.addr().to_string(), r.weight()))
        .collect();
    assert_eq!(reals, [("10.0.0.12".to_string(), 0), ("10.0.0.11".to_string(), 3)]);
    assert_eq!(d.services().count(), 2);
}

#[test]
fn errors_name_the_line() {
    let cases = [
        ("-A -t 10.0.0.100:80 -b sh-bogus", "expected sh-fallback or sh-port"),
        ("-A -t 10.0.0.100:80 -b sh-port", "a flag of the sh scheduler, not of wlc"),
        (
            "-A -t 10.0.0.100 -s rr",
            "port 0 (every port), which ipvsadm takes only for a persistent service",
        ),
        ("-A -f 1 -s rr", "-f (fwmark-service): dr does direct routing only"),
        ("-A -t 10.0.0.100:80 -s rr -M 255.255.255.0", "needs -p"),
        ("-A -t 10.0.0.100:80 -s rr -p 360 -M 255.0.255.0", "not contiguous"),
        ("-A -t 10.0.0.100:80 -s rr -p 0", "out of range"),
        ("-A -t 10.0.0.100:0 -s rr", "port 0"),
        ("-A -t 10.0.0.100:80 -s maglev", "unknown scheduler"),
        ("-a -t 10.0.0.100:80 -r 10.0.0.11", "not defined"),
        ("-E -t 10.0.0.100:80 -s rr", "No such service: -t 10.0.0.100:80 is not defined"),
        ("-L -n", "-L (list) prints the table"),
        ("ipvsadm -Sn", "-S (save) prints the rules"),
        ("-R", "-R (restore) reads rules"),
        ("-A -t www.example.com:80", "dr does not resolve names"),
        ("-A -t 10.0.0.100:80 -s rr --frobnicate", "unknown option"),
    ];
    for (rules, says) in cases {
        let err = load(&format!("# first\n{rules}\n"), &options()).unwrap_err();
        assert_eq!(err.line, Some(2), "{rules}: {err}");
        assert!(err.message.contains(says), "{rules}: {err}");
    }
    let real_cases = [
        ("-a -t 10.0.0.100:80 -r 10.0.0.11:8080", "service port"),
        (
            "-a -t 10.0.0.100:80 -r 10.0.0.11 -m",
            "-m (masquerading, NAT): dr does direct routing only",
        ),
        (
            "-a -t 10.0.0.100:80 -r 10.0.0.11 -i",
            "-i (ipip, tunnelling): dr does direct routing only",
        ),
        ("-a -t 10.0.0.100:80 -r 10.0.0.11 -w 70000", "-w 70000: out of range: give 0 to 65535"),
        ("-a -t 10.0.0.100:80 -r 10.0.0.13", "--neigh 10.0.0.13=MAC"),
        ("-a -t 10.0.0.100:80 -r 10.0.0.11 -w", "needs a value"),
    ];
    for (rules, says) in real_cases {
        let err = load(&format!("-A -t 10.0.0.100:80 -s rr\n{rules}\n"), &options()).unwrap_err();
        assert_eq!(err.line, Some(2), "{rules}: {err}");
        assert!(err.message.contains(says), "{rules}: {err}");
    }
    // The director's own checks, as the configuration file and ctl meet them.
    let learn = RulesOptions { require_real_macs: false, ..options() };
    for (rules, says) in [
        (
            "-a -t 10.0.0.100:80 -r 127.0.0.1",
            "-r 127.0.0.1: real server address 127.0.0.1 is loopback",
        ),
        (
            "-a -t 10.0.0.100:80 -r 10.0.0.100",
            "-r 10.0.0.100: real server address 10.0.0.100 is a VIP",
        ),
        ("-A -t 127.0.0.1:80", "-t 127.0.0.1:80: vip 127.0.0.1 is loopback"),
    ] {
        let err = load(&format!("-A -t 10.0.0.100:80 -s rr\n{rules}\n"), &learn).unwrap_err();
        assert_eq!(err.line, Some(2), "{rules}: {err}");
        assert!(err.message.contains(says), "{rules}: {err}");
    }
}

#[test]
fn defaults_flags_and_thresholds() {
    let rules =
        "-A -t 10.0.0.100:80 -b flag-1,flag-2\n-a -t 10.0.0.100:80 -r 10.0.0.11 -x 100 -y 50\n";
    let d = load(rules, &options()).unwrap();
    let (_, service) = d.services().next().unwrap();
    assert_eq!(service.scheduler(), SchedulerKind::Wlc);
    assert_eq!(
        service.flags(),
        dr_core::SchedFlags { sh_port: true, sh_fallback: true, ..dr_core::SchedFlags::NONE }
    );
    assert_eq!(d.real(service.reals()[0]).unwrap().thresholds(), (100, 50));
    let err = load("-A -t 10.0.0.100:80\n-a -t 10.0.0.100:80 -r 10.0.0.11 -y 5\n", &options())
        .unwrap_err();
    assert_eq!(err.line, Some(2));
    assert!(err.message.contains("l_threshold 5 is above u_threshold 0"), "{err}");
}

#[test]
fn neighbour_arguments() {
    assert!(parse_neighbour("10.0.0.1").is_err());
    assert!(parse_neighbour("10.0.0.x=02:00:00:00:00:01").is_err());
    assert!(parse_neighbour("10.0.0.1=02:00:00:00:00").is_err());
}

#[test]
fn persistence_as_ipvsadm_save_writes_it() {
    let rules = "\
-A -t 10.0.0.100:443 -s wlc -p 360 -M 255.255.255.0
-a -t 10.0.0.100:443 -r 10.0.0.11:443 -g -w 1
-A -t 10.0.0.100:0 -s rr -p
-a -t 10.0.0.100:0 -r 10.0.0.11:0 -g -w 1
";
    let d = load(rules, &options()).unwrap();
    let persistence: Vec<_> = d.services().map(|(_, s)| s.persistence().unwrap()).collect();
    assert_eq!(
        persistence,
        [
            dr_core::Persistence::new(360).with_prefix_len(24),
            dr_core::Persistence::new(dr_core::DEFAULT_PERSISTENT_SECS)
        ]
    );
}

/// Each file under testdata/rules/ (see its README) and the `ipvsadm -L -n` listing it must
/// give, written from ipvsadm's layout (`print_title`, `print_service_entry`: the address in
/// 28 columns, then `%-7s %-6d %-10u %-10u`), compared with trailing blanks removed.
const TESTDATA: &[(&str, &str)] = &[
    (
        "lvs-howto-rc",
        "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.168.1.110:23 rr
  -> 192.168.1.11:23              Route   1      0          0
  -> 192.168.1.12:23              Route   1      0          0
TCP  192.168.1.110:80 wlc
  -> 192.168.1.11:80              Route   2      0          0
  -> 192.168.1.12:80              Route   1      0          0
TCP  192.168.1.110:443 wlc persistent 600
  -> 192.168.1.11:443             Route   1      0          0
  -> 192.168.1.12:443             Route   1      0          0
",
    ),
    (
        "ctdb-lvs",
        "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.1.1.201:0 lc persistent 1999999
  -> 192.168.1.1:0                Route   1      0          0
  -> 192.168.1.2:0                Route   1      0          0
  -> 192.168.1.3:0                Route   1      0          0
UDP  10.1.1.201:0 lc persistent 1999999
  -> 192.168.1.1:0                Route   1      0          0
  -> 192.168.1.2:0                Route   1      0          0
  -> 192.168.1.3:0                Route   1      0          0
",
    ),
    (
        "keepalived-Sn",
        "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.1:80 wlc
  -> 10.0.0.2:80                  Route   1      0          0
  -> 10.0.0.3:80                  Route   1      0          0
TCP  10.0.0.1:443 wlc persistent 300 mask 255.255.255.0
  -> 10.0.0.2:443                 Route   1      0          0
  -> 10.0.0.3:443                 Route   0      0          0
TCP  10.0.0.1:8080 sh (sh-fallback,sh-port)
  -> 10.0.0.2:8080                Route   1      0          0
UDP  10.0.0.1:53 rr
  -> 10.0.0.2:53                  Route   2      0          0
  -> 10.0.0.3:53                  Route   1      0          0
TCP  [2001:db8::1]:80 wrr
  -> [2001:db8::2]:80             Route   3      0          0
  -> [2001:db8::3]:80             Route   1      0          0
TCP  [2001:db8::1]:443 wlc persistent 300 mask 64
  -> [2001:db8::2]:443            Route   1      0          0
",
    ),
    (
        "ipvsadm-save",
        "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.0.2.10:80 wrr
  -> 192.0.2.21:80                Route   5      0          0
  -> 192.0.2.22:80                Route   3      0          0
TCP  192.0.2.10:443 wlc persistent 360
  -> 192.0.2.21:443               Route   1      0          0
  -> 192.0.2.22:443               Route   1      0          0
UDP  192.0.2.10:53 rr
  -> 192.0.2.21:53                Route   1      0          0
  -> 192.0.2.22:53                Route   1      0          0
",
    ),
    (
        "shell-script",
        "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  172.16.0.100:80 rr
  -> 172.16.0.11:80               Route   1      0          0
  -> 172.16.0.12:80               Route   2      0          0
TCP  172.16.0.100:3306 sh persistent 120
  -> 172.16.0.11:3306             Route   1      0          0
UDP  172.16.0.100:53 wrr
  -> 172.16.0.11:53               Route   3      0          0
",
    ),
    (
        "long-options",
        "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.51.100.7:25 wlc persistent 360 mask 255.255.255.0
  -> 198.51.100.21:25             Route   4      0          0
  -> 198.51.100.22:25             Route   2      0          0
UDP  198.51.100.7:514 sed
  -> 198.51.100.21:514            Route   1      0          0
",
    ),
];

fn trim_lines(text: &str) -> String {
    text.lines().map(|l| format!("{}\n", l.trim_end())).collect()
}

fn testdata() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/rules")
}

#[test]
fn rules_files_as_people_write_them_load_unchanged() {
    let mut files: Vec<String> = std::fs::read_dir(testdata())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".rules"))
        .collect();
    files.sort();
    let mut named: Vec<String> = TESTDATA.iter().map(|(n, _)| format!("{n}.rules")).collect();
    named.sort();
    assert_eq!(files, named, "every file in testdata/rules has its listing here");
    let readme = std::fs::read_to_string(testdata().join("README.md")).unwrap();
    let mut options = options();
    options.config.capacity = 4096;
    options.require_real_macs = false;
    for (name, listing) in TESTDATA {
        assert!(readme.contains(&format!("`{name}.rules`")), "the README describes {name}");
        let text = std::fs::read_to_string(testdata().join(format!("{name}.rules"))).unwrap();
        let d = load(&text, &options).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = trim_lines(&d.listing(dr_core::ListingFormat::Plain).to_string());
        assert_eq!(got, *listing, "{name}");
    }
}

#[test]
fn what_the_testdata_sets_besides_the_listing() {
    let mut options = options();
    options.require_real_macs = false;
    let load_file = |name: &str| {
        load(&std::fs::read_to_string(testdata().join(name)).unwrap(), &options).unwrap()
    };
    let d = load_file("shell-script.rules");
    assert_eq!(
        d.listing(dr_core::ListingFormat::Timeout).to_string(),
        "Timeout (tcp tcpfin udp): 30 5 60\n"
    );
    let d = load_file("long-options.rules");
    let smtp = d
        .find_service(&ServiceKey {
            protocol: Protocol::Tcp,
            vip: "198.51.100.7".parse().unwrap(),
            port: 25,
        })
        .unwrap();
    let thresholds: Vec<_> =
        d.service(smtp).unwrap().reals().iter().map(|&r| d.real(r).unwrap().thresholds()).collect();
    assert_eq!(thresholds, [(0, 0), (100, 50)], "newest first: .22, then .21 with -x 100 -y 50");
}

#[test]
fn clear_removes_what_came_before_it() {
    let rules = "\
-A -t 10.0.0.100:80 -s rr
-a -t 10.0.0.100:80 -r 10.0.0.11
-A -u 10.0.0.100:53
-C
-A -t 10.0.0.100:443 -s wlc
-a -t 10.0.0.100:443 -r 10.0.0.12
";
    let d = load(rules, &options()).unwrap();
    let keys: Vec<String> = d.services().map(|(_, s)| s.key().to_string()).collect();
    assert_eq!(keys, ["TCP  10.0.0.100:443"]);
    // A service -C removed can be added again.
    let d = load(&format!("{rules}-A -t 10.0.0.100:80\n"), &options()).unwrap();
    assert_eq!(d.services().count(), 2);
}

#[test]
fn every_command_that_changes_the_table_is_applied_in_order() {
    let rules = "\
ipvsadm -A -t 10.0.0.100:80 -s rr
ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.11 -w 2
ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.12
ipvsadm -e -t 10.0.0.100:80 -r 10.0.0.12 -w 4
ipvsadm -d -t 10.0.0.100:80 -r 10.0.0.11
ipvsadm -E -t 10.0.0.100:80 -s wrr
ipvsadm -A -u 10.0.0.100:53
ipvsadm -D -u 10.0.0.100:53
ipvsadm -Z
";
    let d = load(rules, &options()).unwrap();
    let listing = trim_lines(&d.listing(dr_core::ListingFormat::Plain).to_string());
    let expected = "\
TCP  10.0.0.100:80 wrr
  -> 10.0.0.12:80                 Route   4      0          0
";
    assert!(listing.ends_with(expected), "{listing}");
    assert_eq!(d.services().count(), 1);
}

#[test]
fn a_listing_line_or_a_bare_ipvsadm_is_refused_with_its_line() {
    for line in ["/sbin/ipvsadm", "ipvsadm -L -n", "ipvsadm -ln --stats"] {
        let err = load(&format!("-A -t 10.0.0.100:80\n\n{line}\n"), &options()).unwrap_err();
        assert_eq!(err.line, Some(3), "{line}: {err}");
        assert!(err.message.contains("remove the line"), "{line}: {err}");
    }
}

#[test]
fn saved_rules_rebuild_the_same_table() {
    // `-S -n` writes the rules of the running services; loading them gives the same
    // listings (plain, thresholds), for every rules file of testdata and for ipvsadm's own
    // save format.
    let mut options = options();
    options.config.capacity = 4096;
    options.require_real_macs = false;
    let mut texts: Vec<String> = TESTDATA
        .iter()
        .map(|(name, _)| std::fs::read_to_string(testdata().join(format!("{name}.rules"))).unwrap())
        .collect();
    texts.push(SAVED.to_string());
    for text in texts {
        let d = load(&text, &options).unwrap();
        let saved = d.listing(dr_core::ListingFormat::Rules).to_string();
        let again = load(&saved, &options).unwrap_or_else(|e| panic!("{saved}: {e}"));
        for format in [dr_core::ListingFormat::Plain, dr_core::ListingFormat::Thresholds] {
            assert_eq!(again.listing(format).to_string(), d.listing(format).to_string(), "{saved}");
        }
        assert_eq!(again.listing(dr_core::ListingFormat::Rules).to_string(), saved);
        for line in saved.lines() {
            assert!(line.starts_with("-A ") || line.starts_with("-a "), "{line}");
        }
    }
}

#[test]
fn saved_rules_are_ipvsadm_save_lines() {
    // Written by hand from print_service_entry with FMT_RULE.
    let d = load(SAVED, &options()).unwrap();
    let expected = "\
-A -t 10.0.0.100:80 -s rr
-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 3
-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 0
-A -u [2001:db8::100]:53 -s rr
-a -u [2001:db8::100]:53 -r [2001:db8::11]:53 -g -w 1
";
    assert_eq!(d.listing(dr_core::ListingFormat::Rules).to_string(), expected);
}

#[test]
fn mh_flags_in_ipvsadm_syntax() {
    let rules =
        "-A -t 10.0.0.100:80 -b mh-fallback,mh-port -s mh\n-a -t 10.0.0.100:80 -r 10.0.0.11 -w 2\n";
    let d = load(rules, &options()).unwrap();
    let (_, service) = d.services().next().unwrap();
    assert_eq!(service.scheduler(), SchedulerKind::Mh);
    let both =
        dr_core::SchedFlags { mh_port: true, mh_fallback: true, ..dr_core::SchedFlags::NONE };
    assert_eq!(service.flags(), both);
    let listing = d.listing(dr_core::ListingFormat::Plain).to_string();
    assert!(listing.contains("TCP  10.0.0.100:80 mh (mh-fallback,mh-port)\n"), "{listing}");
    // flag-1 and flag-2 are mh's own under mh.
    let d = load("-A -t 10.0.0.100:80 -s mh -b flag-2,flag-1\n", &options()).unwrap();
    assert_eq!(d.services().next().unwrap().1.flags(), both);
    for (line, says) in [
        ("-A -t 10.0.0.100:80 -s rr -b mh-port", "mh-port: a flag of the mh scheduler, not of rr"),
        ("-A -t 10.0.0.100:80 -s mh -b sh-port", "sh-port: a flag of the sh scheduler, not of mh"),
        (
            "-A -t 10.0.0.100:80 -s mh -b mh-bogus",
            "expected sh-fallback or sh-port (sh), mh-fallback or mh-port (mh)",
        ),
    ] {
        let err = load(&format!("{line}\n"), &options()).unwrap_err();
        assert_eq!(err.line, Some(1), "{line}: {err}");
        assert!(err.message.contains(says), "{line}: {err}");
    }
}

#[test]
fn ops_loads_in_every_form_ipvsadm_takes_and_survives_a_save() {
    // -o, --ops, and -o bundled with other short options, as popt bundles them.
    let rules = "\
-A -u 10.0.0.100:53 -s rr -o
-a -u 10.0.0.100:53 -r 10.0.0.11:53 -g -w 1
--add-service --udp-service 10.0.0.100:54 --scheduler rr --ops
-Ao -u 10.0.0.100:55 -s sh -b sh-port -p 60
-A -ou 10.0.0.100:56
-A -u 10.0.0.100:57 -s rr -o
-E -u 10.0.0.100:57 -s rr
";
    let d = load(rules, &options()).unwrap();
    let plain = "IP Virtual Server version 1.2.1 (size=1048576)\n\
                 Prot LocalAddress:Port Scheduler Flags\n  \
                 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
                 UDP  10.0.0.100:53 rr ops\n  \
                 -> 10.0.0.11:53                 Route   1      0          0         \n\
                 UDP  10.0.0.100:54 rr ops\n\
                 UDP  10.0.0.100:55 sh (sh-port) persistent 60 ops\n\
                 UDP  10.0.0.100:56 wlc ops\n\
                 UDP  10.0.0.100:57 rr\n";
    assert_eq!(d.listing(dr_core::ListingFormat::Plain).to_string(), plain);
    let saved = d.listing(dr_core::ListingFormat::Rules).to_string();
    assert_eq!(
        saved,
        "-A -u 10.0.0.100:53 -s rr -o\n\
         -a -u 10.0.0.100:53 -r 10.0.0.11:53 -g -w 1\n\
         -A -u 10.0.0.100:54 -s rr -o\n\
         -A -u 10.0.0.100:55 -s sh -p 60 -o -b sh-port\n\
         -A -u 10.0.0.100:56 -s wlc -o\n\
         -A -u 10.0.0.100:57 -s rr\n"
    );
    let again = load(&saved, &options()).unwrap();
    assert_eq!(again.listing(dr_core::ListingFormat::Plain).to_string(), plain);
    assert_eq!(again.listing(dr_core::ListingFormat::Rules).to_string(), saved);
}

#[test]
fn ops_is_refused_where_ipvsadm_refuses_it() {
    let cases = [
        (
            "-A -t 10.0.0.100:80 -s rr -o",
            "-o (ops): One-Packet Scheduling is only for UDP virtual services (ipvsadm refuses \
             it for -t 10.0.0.100:80): give -u VIP:PORT, or remove -o",
        ),
        (
            "-E -t 10.0.0.100:80 --ops",
            "--ops (ops): One-Packet Scheduling is only for UDP virtual services (ipvsadm \
             refuses it for -t 10.0.0.100:80): give -u VIP:PORT, or remove --ops",
        ),
        ("-A -u 10.0.0.100:53 -o -o", "-o and -o: one ops option per line"),
        ("-a -u 10.0.0.100:53 -r 10.0.0.11 -o", "-o (ops) does not go with -a (add-server)"),
    ];
    for (line, says) in cases {
        let e = load(&format!("# rules\n{line}\n"), &options()).unwrap_err();
        assert_eq!(e.line, Some(2), "{line}");
        assert_eq!(e.message, says, "{line}");
    }
}
