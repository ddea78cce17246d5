//! The configuration parsers on arbitrary text: the TOML loader, the ipvsadm command
//! language (rules files and the control socket) and the keepalived.conf reader (the text as
//! its main file, which may include itself) must never panic; they accept or refuse with a
//! message.

#![no_main]

use dr_examples::config::{LoadOptions, load};
use dr_examples::{ipvsadm, keepalived, rules};
use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};

/// One file, `keepalived.conf`, every glob matching it.
struct OneFile<'a>(&'a str);

impl keepalived::Source for OneFile<'_> {
    fn read(&self, _: &Path) -> Result<String, String> {
        Ok(self.0.to_string())
    }

    fn glob(&self, _: &Path) -> Result<Vec<PathBuf>, String> {
        Ok(vec![PathBuf::from("keepalived.conf")])
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // A fixed config id, so that `@fuzz` lines are read and the host name plays no part.
    let id = Some("fuzz".to_string());
    match keepalived::read_as(&OneFile(text), Path::new("keepalived.conf"), id) {
        Ok(plan) => {
            let options = keepalived::BuildOptions {
                config: {
                    let mut c = dr_core::Config::new("02:00:00:00:00:01".parse().unwrap(), [1; 4]);
                    c.capacity = 64;
                    c
                },
                neighbours: Default::default(),
                require_real_macs: false,
            };
            let _ = plan.build(&keepalived::Pool::new(&plan), &options, options.config.clone());
        }
        Err(e) => assert!(!e.message.is_empty()),
    }
    let options = LoadOptions {
        hash_seed: [1, 2, 3, 4],
        require_real_macs: false,
        default_mac: None,
        default_capacity: Some(64),
    };
    if let Err(e) = load(text, options) {
        assert!(!e.message.is_empty());
    }
    let mac = "02:00:00:00:00:01".parse().unwrap();
    let rules_options = rules::RulesOptions {
        config: {
            let mut c = dr_core::Config::new(mac, [1, 2, 3, 4]);
            c.capacity = 64;
            c
        },
        neighbours: Default::default(),
        require_real_macs: false,
    };
    if let Ok(mut director) = rules::load(text, &rules_options) {
        // Every line again through the control socket's path, listings included.
        for line in text.lines().take(64) {
            if let Ok(rule) = ipvsadm::parse(line) {
                let _ = ipvsadm::apply(
                    &mut director,
                    &rule,
                    &ipvsadm::Macs::default(),
                    dr_core::Instant::ZERO,
                );
            }
        }
    }
});
