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
        ("-A -t 10.0.0.100:80 -b sh-bogus", "expected sh-port or sh-fallback"),
        ("-A -t 10.0.0.100 -s rr", "needs a port"),
        ("-A -f 1 -s rr", "firewall-mark"),
        ("-A -t 10.0.0.100:80 -s rr -M 255.255.255.0", "needs -p"),
        ("-A -t 10.0.0.100:80 -s rr -p 360 -M 255.0.255.0", "not contiguous"),
        ("-A -t 10.0.0.100:80 -s rr -p 0", "out of range"),
        ("-A -t 10.0.0.100:0 -s rr", "port 0"),
        ("-A -t 10.0.0.100:80 -s lblc", "unknown scheduler"),
        ("-a -t 10.0.0.100:80 -r 10.0.0.11", "not defined"),
        ("-E -t 10.0.0.100:80 -s rr", "only -A"),
        ("-A -t 10.0.0.100:80 -s rr --frobnicate", "unknown option"),
    ];
    for (rules, says) in cases {
        let err = load(&format!("# first\n{rules}\n"), &options()).unwrap_err();
        assert_eq!(err.line, Some(2), "{rules}: {err}");
        assert!(err.message.contains(says), "{rules}: {err}");
    }
    let real_cases = [
        ("-a -t 10.0.0.100:80 -r 10.0.0.11:8080", "service port"),
        ("-a -t 10.0.0.100:80 -r 10.0.0.11 -m", "only direct routing"),
        ("-a -t 10.0.0.100:80 -r 10.0.0.11 -w 70000", "-w 70000: out of range: give 0 to 65535"),
        ("-a -t 10.0.0.100:80 -r 10.0.0.13", "--neigh 10.0.0.13=MAC"),
        ("-a -t 10.0.0.100:80 -r 10.0.0.11 -w", "needs a value"),
    ];
    for (rules, says) in real_cases {
        let err = load(&format!("-A -t 10.0.0.100:80 -s rr\n{rules}\n"), &options()).unwrap_err();
        assert_eq!(err.line, Some(2), "{rules}: {err}");
        assert!(err.message.contains(says), "{rules}: {err}");
    }
}

#[test]
fn defaults_flags_and_thresholds() {
    let rules = "-A -t 10.0.0.100:80 -b sh-fallback,sh-port\n-a -t 10.0.0.100:80 -r 10.0.0.11 -x 100 -y 50\n";
    let d = load(rules, &options()).unwrap();
    let (_, service) = d.services().next().unwrap();
    assert_eq!(service.scheduler(), SchedulerKind::Wlc);
    assert_eq!(service.flags(), dr_core::SchedFlags { sh_port: true, sh_fallback: true });
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
