//! keepalived.conf files, public ones and keepalived's own samples among them
//! (testdata/keepalived/README.md says where each comes from), each loaded to the
//! `ipvsadm -L -n` listing it must give, written here by hand from the file; and the
//! errors and warnings, with their files and lines.

use dr_core::{Config, ListingFormat, MacAddr};
use dr_examples::health::Probe;
use dr_examples::keepalived::{self, BuildOptions, Plan, Pool};
use dr_examples::probes::{DnsType, DynamicWeight, HttpGet};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/keepalived").join(name)
}

fn options() -> BuildOptions {
    BuildOptions {
        config: Config::new(MacAddr([2, 0, 0, 0, 0, 1]), [1, 2, 3, 4]),
        neighbours: Default::default(),
        require_real_macs: false,
    }
}

fn listing(plan: &Plan, pool: &Pool) -> String {
    let options = options();
    let director = plan.build(pool, &options, plan.config(&options)).unwrap();
    director.listing(ListingFormat::Plain).to_string()
}

fn warnings(plan: &Plan) -> Vec<String> {
    plan.warnings.iter().map(ToString::to_string).collect()
}

const HEAD: &str = "IP Virtual Server version 1.2.1 (size=1048576)\n\
                    Prot LocalAddress:Port Scheduler Flags\n  \
                    -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

#[test]
fn a_public_mysql_dr_file_loads_unchanged() {
    let path = data("tgentimc-mysql.conf");
    let plan = keepalived::read(&path).unwrap();
    assert_eq!(
        listing(&plan, &Pool::new(&plan)),
        format!(
            "{HEAD}TCP  172.16.133.250:3306 rr persistent 60\n  \
             -> 172.16.133.200:3306          Route   3      0          0         \n"
        )
    );
    let file = path.display();
    let said = warnings(&plan);
    // One warning per kind, each naming its line: the mail settings, VRRP, the script
    // and the misspelt connect_port (keepalived too only warns of it).
    for expected in [
        format!("{file}: line 6: global_defs: notification_email does not apply"),
        format!("{file}: line 25: vrrp_instance: VRRP and the host's addresses"),
        format!("{file}: line 81: real_server: notify_down does not apply"),
        format!("{file}: line 91: TCP_CHECK: unknown keyword connetc_port: skipped"),
    ] {
        assert!(said.iter().any(|w| w.starts_with(&expected)), "{expected}\nin {said:#?}");
    }
    assert_eq!(said.iter().filter(|w| w.contains("global_defs:")).count(), 5, "{said:#?}");
    // The checker: nb_get_retry 3 is three retries (down at the fourth failure), three
    // seconds apart; connect_timeout 3; delay_loop 6.
    let checker = &plan.services[0].reals[0].checkers[0];
    assert_eq!(checker.check.probe, Probe::Tcp);
    assert_eq!(checker.check.fall, 4);
    assert_eq!(checker.check.rise, 1);
    assert_eq!(checker.check.interval, Duration::from_secs(6));
    assert_eq!(checker.check.timeout, Duration::from_secs(3));
    assert_eq!(checker.check.retry_interval, Some(Duration::from_secs(3)));
    assert_eq!(checker.target, "172.16.133.200:3306".parse().unwrap());
}

#[test]
fn an_unknown_scheduler_is_refused_naming_its_line() {
    let path = data("xusxlinux-apiserver.conf");
    let e = keepalived::read(&path).unwrap_err();
    assert_eq!(e.file, path);
    assert_eq!(e.line, Some(22));
    assert!(
        e.to_string().starts_with(&format!(
            "{}: line 22: lb_algo: loadbalance: unknown scheduler: expected one of rr wrr",
            path.display()
        )),
        "{e}"
    );
}

#[test]
fn keepalived_samples_of_nat_services_serve_nothing_here() {
    for name in ["acassen-keepalived.conf.sample", "acassen-keepalived.conf.quorum"] {
        let path = data(name);
        let e = keepalived::read(&path).unwrap_err();
        assert!(e.message.starts_with("no virtual_server with lb_kind DR to serve"), "{e}");
    }
}

#[test]
fn the_features_file_with_its_includes() {
    let path = data("features/keepalived.conf");
    let plan = keepalived::read(&path).unwrap();
    let timeouts = plan.timeouts.unwrap();
    assert_eq!((timeouts.tcp, timeouts.tcpfin, timeouts.udp), (600, 60, 120));
    // At start: the web service has both reals (the inhibited sorry server at 0); the
    // DNS group's reals are alpha: 10.0.0.21 is out, 10.0.0.22 (inhibit) is in at 0, and
    // with no live weight the quorum is lost. The NAT service is skipped.
    assert_eq!(
        listing(&plan, &Pool::new(&plan)),
        format!(
            "{HEAD}TCP  10.0.0.100:80 sh (sh-fallback,sh-port)\n  \
             -> 10.0.0.11:80                 Route   3      0          0         \n  \
             -> 10.0.0.12:80                 Route   2      0          0         \n  \
             -> 10.0.0.99:80                 Route   0      0          0         \n\
             UDP  10.0.0.53:53 mh (mh-port) persistent 120 mask 255.255.255.0\n  \
             -> 10.0.0.22:53                 Route   0      0          0         \n\
             UDP  10.0.0.54:53 mh (mh-port) persistent 120 mask 255.255.255.0\n  \
             -> 10.0.0.22:53                 Route   0      0          0         \n"
        )
    );
    // A replay takes every checker as up.
    assert_eq!(
        listing(&plan, &Pool::all_alive(&plan)),
        format!(
            "{HEAD}TCP  10.0.0.100:80 sh (sh-fallback,sh-port)\n  \
             -> 10.0.0.11:80                 Route   3      0          0         \n  \
             -> 10.0.0.12:80                 Route   2      0          0         \n  \
             -> 10.0.0.99:80                 Route   0      0          0         \n\
             UDP  10.0.0.53:53 mh (mh-port) persistent 120 mask 255.255.255.0\n  \
             -> 10.0.0.21:53                 Route   1      0          0         \n  \
             -> 10.0.0.22:53                 Route   1      0          0         \n\
             UDP  10.0.0.54:53 mh (mh-port) persistent 120 mask 255.255.255.0\n  \
             -> 10.0.0.21:53                 Route   1      0          0         \n  \
             -> 10.0.0.22:53                 Route   1      0          0         \n"
        )
    );
    let web = data("features/conf.d/10-web.conf");
    let dns = data("features/conf.d/20-dns.conf");
    let said = warnings(&plan);
    assert!(
        said.iter().any(|w| w.starts_with(&format!(
            "{}: line 28: lb_kind NAT: dr is a Direct Routing director",
            dns.display()
        ))),
        "{said:#?}"
    );
    let checkers = &plan.services[0].reals[0].checkers;
    let Probe::HttpGet(HttpGet { urls, tls: None, .. }) = &checkers[0].check.probe else {
        panic!("{checkers:?}")
    };
    assert_eq!(urls[0].status, [(200, 299), (304, 304)]);
    assert_eq!(urls[0].digest.unwrap()[..2], [0x9b, 0x3a]);
    assert_eq!(checkers[0].check.fall, 3, "retry 2");
    assert_eq!(checkers[0].check.retry_interval, Some(Duration::from_secs(3)));
    assert_eq!(checkers[0].check.interval, Duration::from_secs(2), "the service's delay_loop");
    assert_eq!(plan.services[0].reals[1].checkers[0].target, "10.0.0.12:8080".parse().unwrap());
    let Probe::Dns(query) = &plan.services[1].reals[0].checkers[0].check.probe else { panic!() };
    assert_eq!((query.qtype, query.name.as_str()), (DnsType::A, "example.com"));
    assert_eq!(plan.services[1].reals[0].checkers[0].check.fall, 4, "DNS_CHECK retries 3");
    let Probe::Misc(misc) = &plan.services[1].reals[1].checkers[0].check.probe else { panic!() };
    assert_eq!(misc.argv, ["/bin/true", "--quiet"]);
    assert!(misc.dynamic);
    assert_eq!(plan.services[1].reals[1].checkers[0].check.fall, 1, "MISC_CHECK retries 0");
    assert_eq!(plan.services[0].place.file.as_ref(), web.as_path());
    assert_eq!(plan.services[0].place.line, 1);
}

#[test]
fn removal_inhibit_quorum_and_the_sorry_server() {
    let path = data("features/keepalived.conf");
    let plan = keepalived::read(&path).unwrap();
    let mut pool = Pool::new(&plan);
    let table = |pool: &Pool, s| {
        pool.table(&plan, s).iter().map(|e| (e.addr.to_string(), e.weight)).collect::<Vec<_>>()
    };
    let e = |a: &str, w| (a.to_string(), w);
    // 10.0.0.11 fails: inhibit_on_failure keeps it at 0.
    assert!(pool.record(&plan, (0, 0, 0), false, None));
    assert_eq!(table(&pool, 0), [e("10.0.0.11", 0), e("10.0.0.12", 2), e("10.0.0.99", 0)]);
    // 10.0.0.12 fails too: no live weight, quorum lost, the sorry server comes in.
    assert!(pool.record(&plan, (0, 1, 0), false, None));
    assert!(!pool.quorum_up(0));
    assert_eq!(table(&pool, 0), [e("10.0.0.11", 0), e("10.0.0.12", 0), e("10.0.0.99", 1)]);
    assert!(pool.record(&plan, (0, 1, 0), true, None));
    assert_eq!(table(&pool, 0), [e("10.0.0.11", 0), e("10.0.0.12", 2), e("10.0.0.99", 0)]);
    // The DNS group: 10.0.0.21 (no inhibit) comes up when its alpha checker first passes.
    assert_eq!(table(&pool, 1), [e("10.0.0.22", 0)]);
    assert!(pool.record(&plan, (1, 0, 0), true, None));
    assert_eq!(table(&pool, 1), [e("10.0.0.21", 1), e("10.0.0.22", 0)]);
    // misc_dynamic: exit status 12 sets the weight to 10; 0 (up, no weight) keeps it, as
    // keepalived's check_misc.c updates the weight only for a status other than 0; 3 sets 1.
    assert!(pool.record(&plan, (1, 1, 0), true, Some(DynamicWeight(10))));
    assert_eq!(table(&pool, 1), [e("10.0.0.21", 1), e("10.0.0.22", 10)]);
    assert!(!pool.record(&plan, (1, 1, 0), true, None));
    assert_eq!(table(&pool, 1), [e("10.0.0.21", 1), e("10.0.0.22", 10)]);
    assert!(pool.record(&plan, (1, 1, 0), true, Some(DynamicWeight(3 - 2))));
    assert_eq!(table(&pool, 1), [e("10.0.0.21", 1), e("10.0.0.22", 1)]);
    // 10.0.0.21 fails: removed.
    assert!(pool.record(&plan, (1, 0, 0), false, None));
    assert_eq!(table(&pool, 1), [e("10.0.0.22", 1)]);
    // A reload keeps the states of the checkers that stay.
    let carried = Pool::carried(&plan, &pool);
    assert_eq!(table(&carried, 1), [e("10.0.0.22", 1)]);
    assert_eq!(table(&carried, 0), table(&pool, 0));
}

/// A tree of files in a scratch directory.
fn scratch(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dr-keepalived-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

const SERVICE: &str =
    "virtual_server 10.0.0.1 80 {\n  lb_kind DR\n  real_server 10.0.0.2 80 {\n  }\n}\n";

#[test]
fn includes_glob_in_name_order_relative_to_the_including_file() {
    let dir = scratch(
        "glob",
        &[
            ("main.conf", "include sub/*.conf # the services\n"),
            (
                "sub/b.conf",
                "virtual_server 10.0.0.1 81 { lb_kind DR\n real_server 10.0.0.3 81 { }\n}\n",
            ),
            ("sub/a.conf", "include ../more/one.conf\n"),
            ("more/one.conf", SERVICE),
            ("sub/c.txt", "this is not included {\n"),
        ],
    );
    let plan = keepalived::read(&dir.join("main.conf")).unwrap();
    let ports: Vec<u16> = plan.services.iter().map(|s| s.port).collect();
    assert_eq!(ports, [80, 81]);
    assert_eq!(plan.services[0].place.file.as_ref(), dir.join("sub/../more/one.conf"));
    // An include that matches nothing is skipped with a warning naming its line, as
    // keepalived skips it (an empty conf.d); includew refuses it.
    let dir = scratch("none", &[("main.conf", &format!("{SERVICE}include none/*.conf\n"))]);
    let plan = keepalived::read(&dir.join("main.conf")).unwrap();
    assert_eq!(plan.services.len(), 1);
    let said = warnings(&plan);
    assert_eq!(said.len(), 1, "{said:#?}");
    assert!(said[0].contains(": line 6: include none/*.conf: no file matches"), "{said:#?}");
    let dir = scratch("neverw", &[("main.conf", &format!("{SERVICE}includew none/*.conf\n"))]);
    let e = keepalived::read(&dir.join("main.conf")).unwrap_err();
    assert_eq!(e.line, Some(6));
    assert!(e.message.starts_with("includew none/*.conf: no file matches"), "{e}");
    // A file that includes itself stops.
    let dir = scratch("loop", &[("main.conf", "include main.conf\n")]);
    let e = keepalived::read(&dir.join("main.conf")).unwrap_err();
    assert!(e.message.contains("nest more than 32 deep"), "{e}");
}

#[test]
fn errors_name_the_file_the_line_and_the_keyword() {
    let cases: &[(&str, usize, &str)] = &[
        ("virtual_server 10.0.0.1 80 {\n lb_kind DR\n", 1, "this block is not closed"),
        ("}\n", 1, "this } closes no block"),
        (
            "virtual_server 10.0.0.1 80 {\n lb_kind DR\n real_server 10.0.0.2 80 {\n  weight 70000\n }\n}\n",
            4,
            "weight: 70000 is out of range: give a whole number, 0 to 65535",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n lb_kind DR\n delay_loop soon\n}\n",
            3,
            "delay_loop: soon is not a time",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n lb_kind DR\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n   url {\n    path /\n    regex ok\n   }\n  }\n }\n}\n",
            7,
            "regex: regular expression checks are not supported",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n lb_kind DR\n real_server 10.0.0.2 80 {\n  SMTP_CHECK {\n  }\n }\n}\n",
            4,
            "SMTP_CHECK: this checker is not supported",
        ),
        ("\n~SEQ(I, 1, 0, 3) x\n", 2, "~SEQ(I, 1, 0, 3) x: Invalid ~SEQ values"),
        (&"a {\n".repeat(40), 33, "blocks nested more than 32 deep"),
        ("misc_path \"/bin/true\n", 1, "the quote \" is not closed"),
        (
            "virtual_server 10.0.0.1 80 {\n lb_kind DR\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n   url {\n    digest 12\n   }\n  }\n }\n}\n",
            6,
            "digest: 12: give the body's MD5 as 32 hex digits",
        ),
    ];
    for (i, (text, line, says)) in cases.iter().enumerate() {
        let dir = scratch(&format!("error{i}"), &[("k.conf", text)]);
        let path = dir.join("k.conf");
        let e = keepalived::read(&path).unwrap_err();
        assert_eq!(e.line, Some(*line), "{text}: {e}");
        assert!(
            e.to_string().starts_with(&format!("{}: line {line}: {says}", path.display())),
            "{e}"
        );
    }
}

#[test]
fn each_kind_of_warning_is_said_once() {
    let text = "vrrp_instance A {\n}\nvrrp_instance B {\n}\nvirtual_server fwmark 1 {\n}\n\
                virtual_server 10.0.0.1 80 {\n lb_kind DR\n frobnicate 1\n frobnicate 2\n \
                real_server 10.0.0.2 80 {\n }\n}\nvirtual_server 10.0.0.1 81 {\n lb_kind TUN\n}\n";
    let dir = scratch("warn", &[("k.conf", text)]);
    let plan = keepalived::read(&dir.join("k.conf")).unwrap();
    let lines: Vec<Option<usize>> = plan.warnings.iter().map(|w| w.line).collect();
    assert_eq!(lines, [Some(1), Some(5), Some(9), Some(15)], "{:#?}", plan.warnings);
    assert!(plan.warnings[2].message.contains("unknown keyword frobnicate"));
}

#[test]
fn every_scheduler_dr_has_is_an_lb_algo() {
    for kind in dr_core::SchedulerKind::ALL {
        let text = format!(
            "virtual_server 10.0.0.1 80 {{\n lb_algo {kind}\n lb_kind DR\n real_server 10.0.0.2 80 {{\n }}\n}}\n"
        );
        let dir = scratch(&format!("sched-{kind}"), &[("k.conf", &text)]);
        let plan = keepalived::read(&dir.join("k.conf")).unwrap();
        assert_eq!(plan.services[0].scheduler, *kind);
    }
}

#[test]
fn a_group_may_be_defined_after_the_virtual_server_that_uses_it() {
    // keepalived links `virtual_server group NAME` to its group once the whole file is read.
    let text = "virtual_server group WEB {\n lb_algo rr\n lb_kind DR\n protocol TCP\n \
                real_server 10.0.0.11 80 {\n  weight 2\n }\n}\n\
                virtual_server_group WEB {\n 10.0.0.100 80\n 10.0.0.101 80\n}\n";
    let dir = scratch("group-after", &[("k.conf", text)]);
    let plan = keepalived::read(&dir.join("k.conf")).unwrap();
    assert_eq!(
        listing(&plan, &Pool::new(&plan)),
        format!(
            "{HEAD}TCP  10.0.0.100:80 rr\n  \
             -> 10.0.0.11:80                 Route   2      0          0         \n\
             TCP  10.0.0.101:80 rr\n  \
             -> 10.0.0.11:80                 Route   2      0          0         \n"
        )
    );
    // A group that is nowhere in the file is an error naming the line of its use.
    let dir =
        scratch("group-missing", &[("k.conf", text.split("virtual_server_group").next().unwrap())]);
    let e = keepalived::read(&dir.join("k.conf")).unwrap_err();
    assert_eq!(e.line, Some(1), "{e}");
    assert!(e.to_string().contains("the file has no virtual_server_group WEB"), "{e}");
}

#[test]
fn ops_schedules_each_udp_datagram_and_is_reset_on_tcp_as_keepalived_does() {
    // check_parser.c takes `ops` (IP_VS_SVC_F_ONEPACKET); check_data.c resets it on a
    // virtual server that is not UDP, with "one packet scheduling requires UDP -
    // resetting". The protocol may come after the keyword.
    let text = "virtual_server 10.0.0.1 53 {\n  lb_kind DR\n  lb_algo rr\n  ops\n  \
                persistence_timeout 120\n  protocol UDP\n  real_server 10.0.0.2 53 {\n  }\n}\n\
                virtual_server 10.0.0.1 80 {\n  lb_kind DR\n  ops\n  protocol TCP\n  \
                real_server 10.0.0.2 80 {\n  }\n}\n";
    let dir = scratch("ops", &[("k.conf", text)]);
    let path = dir.join("k.conf");
    let plan = keepalived::read(&path).unwrap();
    assert_eq!(
        listing(&plan, &Pool::new(&plan)),
        format!(
            "{HEAD}TCP  10.0.0.1:80 wlc\n  \
             -> 10.0.0.2:80                  Route   1      0          0         \n\
             UDP  10.0.0.1:53 rr persistent 120 ops\n  \
             -> 10.0.0.2:53                  Route   1      0          0         \n"
        )
    );
    let said = warnings(&plan);
    assert_eq!(said.len(), 1, "{said:#?}");
    let expected = format!(
        "{}: line 12: ops: one packet scheduling requires UDP: not applied to this TCP \
         virtual_server (keepalived resets it too)",
        path.display()
    );
    assert_eq!(said[0], expected);
}

#[test]
fn a_group_checks_each_real_server_once_and_applies_it_to_every_address() {
    // keepalived checks the real servers of a `virtual_server group` block once
    // (one checker per real server of the one virtual_server_t) and sets the result on
    // every address of the group (ipwrapper.c through ipvs_group_cmd).
    let text = "virtual_server_group WEB {\n 10.0.0.100 80\n 10.0.0.101 80\n 10.0.0.102 80\n}\n\
                virtual_server group WEB {\n lb_algo rr\n lb_kind DR\n quorum 2\n \
                sorry_server 10.0.0.99 80\n \
                real_server 10.0.0.11 80 {\n  TCP_CHECK {\n  }\n }\n \
                real_server 10.0.0.12 80 {\n  MISC_CHECK {\n   misc_path /bin/true\n   \
                misc_dynamic\n  }\n }\n}\n";
    let dir = scratch("group-once", &[("k.conf", text)]);
    let plan = keepalived::read(&dir.join("k.conf")).unwrap();
    assert_eq!(plan.services.len(), 3);
    let run: Vec<(usize, usize, usize)> = plan.checkers().map(|(key, _)| key).collect();
    assert_eq!(run, [(0, 0, 0), (0, 1, 0)], "two checkers, the first address's");
    let mut pool = Pool::new(&plan);
    let all_up = |addr: u16| {
        format!(
            "TCP  10.0.0.{addr}:80 rr\n  \
             -> 10.0.0.11:80                 Route   1      0          0         \n  \
             -> 10.0.0.12:80                 Route   1      0          0         \n"
        )
    };
    assert_eq!(
        listing(&plan, &pool),
        format!("{HEAD}{}{}{}", all_up(100), all_up(101), all_up(102))
    );
    // 10.0.0.11 fails: all three addresses lose it, and with it their quorum of 2, so the
    // sorry server replaces the real servers on each.
    assert!(pool.record(&plan, (0, 0, 0), false, None));
    let sorry = |addr: u16| {
        format!(
            "TCP  10.0.0.{addr}:80 rr\n  \
             -> 10.0.0.99:80                 Route   1      0          0         \n"
        )
    };
    assert_eq!(listing(&plan, &pool), format!("{HEAD}{}{}{}", sorry(100), sorry(101), sorry(102)));
    for s in 0..3 {
        assert!(!pool.alive(s, "10.0.0.11".parse().unwrap()), "address {s}");
        assert!(!pool.quorum_up(s), "address {s}");
    }
    // It comes back, and misc_dynamic sets 10.0.0.12's weight on every address.
    assert!(pool.record(&plan, (0, 0, 0), true, None));
    assert!(pool.record(&plan, (0, 1, 0), true, Some(DynamicWeight(5))));
    let weighted = |addr: u16| {
        format!(
            "TCP  10.0.0.{addr}:80 rr\n  \
             -> 10.0.0.11:80                 Route   1      0          0         \n  \
             -> 10.0.0.12:80                 Route   5      0          0         \n"
        )
    };
    assert_eq!(
        listing(&plan, &pool),
        format!("{HEAD}{}{}{}", weighted(100), weighted(101), weighted(102))
    );
    // A reload that keeps the group carries the states to all its addresses.
    assert_eq!(Pool::carried(&plan, &pool), pool);
}

#[test]
fn extra_words_are_ignored_as_keepalived_ignores_them_and_said() {
    // Each keyword dr reads, with a word more than keepalived's handler reads (worked from
    // check_parser.c, check_api.c, check_http.c, check_misc.c, check_dns.c: the handlers
    // read strvec_slot(strvec, 1), or 1 and 2 for an address and port, or nothing).
    let lines = [
        "virtual_server 10.0.0.100 80 X1 {",
        " delay_loop 5 X2",
        " connect_timeout 3 X3",
        " retry 2 X4",
        " delay_before_retry 1 X5",
        " lb_algo sh X6",
        " lb_kind DR X7",
        " sh-port X8",
        " persistence_timeout 60 X9",
        " persistence_granularity 255.255.255.0 X10",
        " protocol TCP X11",
        " quorum 1 X12",
        " hysteresis 0 X13",
        " sorry_server 10.0.0.99 80 X14",
        " sorry_server_inhibit X15",
        " virtualhost www X16",
        " alpha off",
        " ops X37",
        " real_server 10.0.0.11 80 X17 {",
        "  weight 3 X18",
        "  uthreshold 10 X19",
        "  lthreshold 1 X20",
        "  inhibit_on_failure yes X21",
        "  alpha no X22",
        "  nb_get_retry 1 X23",
        "  HTTP_GET {",
        "   connect_ip 10.0.0.11 X24",
        "   connect_port 8080 X25",
        "   http_protocol 1.1 X26",
        "   fast_recovery yes X38",
        "   url {",
        "    path /health X27",
        "    digest 5d41402abc4b2a76b9719d911017c592 X28",
        "    status_code 200 204",
        "   }",
        "  }",
        "  MISC_CHECK {",
        "   misc_path /bin/true X29",
        "   misc_timeout 4 X30",
        "   misc_dynamic X31",
        "  }",
        "  DNS_CHECK {",
        "   type A X32",
        "   name example.com X33",
        "  }",
        " }",
        "}",
        "virtual_server_group G X34 {",
        " 10.0.0.200 80 X35",
        "}",
        "virtual_server group G X36 {",
        " lb_kind DR",
        " real_server 10.0.0.12 80 {",
        " }",
        "}",
    ];
    let text = lines.join("\n") + "\n";
    let dir = scratch("extra-words", &[("k.conf", &text)]);
    let path = dir.join("k.conf");
    let plan = keepalived::read(&path).unwrap();
    let said = warnings(&plan);
    let file = path.display().to_string();
    for (n, line) in lines.iter().enumerate() {
        let words: Vec<&str> = line.split_whitespace().filter(|w| *w != "{").collect();
        let Some(extra) = words.iter().find(|w| w.starts_with('X')) else { continue };
        let keyword = words[0];
        let found = said.iter().find(|w| {
            w.starts_with(&format!("{file}: line {}: {keyword}", n + 1))
                && w.contains(&format!("the extra words `{extra}` are ignored"))
        });
        assert!(found.is_some(), "line {}: {line}: {said:#?}", n + 1);
    }
    // A virtual_server's alpha reads no word (vs_alpha_handler): `alpha off` sets it.
    assert!(
        said.iter().any(|w| w.starts_with(&format!("{file}: line 17: alpha"))
            && w.contains("`off` are ignored")
            && w.contains("so it is set")),
        "{said:#?}"
    );
    let checker = &plan.services[0].reals[0].checkers[0];
    assert!(!checker.alpha, "the real server's `alpha no` is over the virtual server's");
    // The values are the first words', as keepalived takes them.
    let vs = &plan.services[0];
    assert_eq!(vs.reals[0].weight, 3);
    assert_eq!(vs.quorum, 1);
    assert_eq!(checker.target, "10.0.0.11:8080".parse().unwrap());
    let Probe::Misc(misc) = &vs.reals[0].checkers[1].check.probe else { panic!() };
    assert_eq!(misc.argv, ["/bin/true"]);
    // Within limits, nothing is said: status_code takes any number.
    assert!(!said.iter().any(|w| w.contains("status_code")), "{said:#?}");
    // Alone, a virtual_server's `alpha off` and `inhibit_on_failure off` set the flags.
    let text = "virtual_server 10.0.0.100 80 {\n lb_kind DR\n alpha off\n \
                inhibit_on_failure off\n real_server 10.0.0.11 80 {\n  TCP_CHECK {\n  }\n \
                }\n}\n";
    let dir = scratch("vs-alpha", &[("k.conf", text)]);
    let plan = keepalived::read(&dir.join("k.conf")).unwrap();
    assert!(plan.services[0].reals[0].checkers[0].alpha);
    assert!(plan.services[0].reals[0].inhibit);
}
