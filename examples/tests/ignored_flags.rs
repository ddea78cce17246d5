//! A scheduler flag the service's scheduler does not read (the kernel keeps it and ignores
//! it: only `ip_vs_sh.c` and `ip_vs_mh.c` test `IP_VS_SVC_F_SCHED1`/`_SCHED2`, nothing tests
//! `_SCHED3`) is warned of by every loader, naming the service, the flag and the scheduler.

use dr_core::{Config, MacAddr};
use dr_examples::config::{LoadOptions, load};
use dr_examples::flags::ignored_flags;
use dr_examples::{keepalived, rules};
use std::process::Command;

const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

fn warning(service: &str, flag: &str, scheduler: &str) -> String {
    format!(
        "service {service}: scheduler flag {flag} is ignored by the {scheduler} scheduler (only \
         sh and mh read flag-1 and flag-2, and no scheduler reads flag-3); the kernel takes it \
         and ignores it too: remove it, or use the scheduler it is for"
    )
}

fn options() -> LoadOptions {
    LoadOptions {
        hash_seed: [1, 2, 3, 4],
        require_real_macs: false,
        default_mac: Some(MAC),
        default_capacity: None,
    }
}

#[test]
fn the_toml_configuration_warns_of_ignored_flags() {
    let text = "[[service]]\nproto = \"tcp\"\nvip = \"10.0.0.100\"\nport = 80\n\
                scheduler = \"rr\"\nflags = [\"flag-1\", \"flag-3\"]\n\
                [[service]]\nproto = \"udp\"\nvip = \"10.0.0.100\"\nport = 53\n\
                scheduler = \"sh\"\nflags = [\"sh-port\", \"flag-3\"]\n\
                [[service]]\nproto = \"tcp\"\nvip = \"10.0.0.101\"\nport = 80\n\
                scheduler = \"mh\"\nflags = [\"mh-fallback\"]\n";
    let director = load(text, options()).unwrap();
    assert_eq!(
        ignored_flags(&director),
        [
            warning("TCP 10.0.0.100:80", "flag-1", "rr"),
            warning("TCP 10.0.0.100:80", "flag-3", "rr"),
            warning("UDP 10.0.0.100:53", "flag-3", "sh"),
        ]
    );
}

#[test]
fn ipvsadm_rules_warn_of_ignored_flags() {
    let text = "-A -t 10.0.0.100:80 -s wlc -b flag-2\n\
                -A -t 10.0.0.100:81 -s sh -b sh-fallback,sh-port\n\
                -A -t 10.0.0.100:82 -s mh -b flag-1,flag-3\n";
    let options = rules::RulesOptions {
        config: Config::new(MAC, [1, 2, 3, 4]),
        neighbours: Default::default(),
        require_real_macs: false,
    };
    let director = rules::load(text, &options).unwrap();
    assert_eq!(
        ignored_flags(&director),
        [
            warning("TCP 10.0.0.100:80", "flag-2", "wlc"),
            warning("TCP 10.0.0.100:82", "flag-3", "mh")
        ]
    );
}

fn keepalived_conf(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("dr-flags-{name}-{}.conf", std::process::id()));
    std::fs::write(
        &path,
        "virtual_server 10.0.0.100 80 {\n lb_algo lc\n lb_kind DR\n flag-2\n\
         real_server 10.0.0.11 80 {\n TCP_CHECK {\n }\n }\n}\n\
         virtual_server 10.0.0.100 81 {\n lb_algo sh\n lb_kind DR\n flag-1\n\
         real_server 10.0.0.11 81 {\n TCP_CHECK {\n }\n }\n}\n",
    )
    .unwrap();
    path
}

#[test]
fn keepalived_conf_warns_of_ignored_flags() {
    let path = keepalived_conf("lib");
    let plan = keepalived::read(&path).unwrap();
    let options = keepalived::BuildOptions {
        config: Config::new(MAC, [1, 2, 3, 4]),
        neighbours: Default::default(),
        require_real_macs: false,
    };
    let config = plan.config(&options);
    let director = plan.build(&keepalived::Pool::all_alive(&plan), &options, config).unwrap();
    // flag-1 on sh is sh-fallback, which sh reads.
    assert_eq!(ignored_flags(&director), [warning("TCP 10.0.0.100:80", "flag-2", "lc")]);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn check_config_prints_the_warning_once() {
    let path = keepalived_conf("cli");
    let out = Command::new(env!("CARGO_BIN_EXE_dr-director"))
        .args(["--check-config", "--keepalived", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = warning("TCP 10.0.0.100:80", "flag-2", "lc");
    assert_eq!(stderr.matches(&said).count(), 1, "{stderr}");
    let rules = std::env::temp_dir().join(format!("dr-flags-rules-{}", std::process::id()));
    std::fs::write(&rules, "-A -t 10.0.0.100:80 -s rr -b flag-3\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dr-director"))
        .args(["--check-config", "--rules", rules.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&warning("TCP 10.0.0.100:80", "flag-3", "rr")), "{stderr}");
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&rules);
}
