//! What a run of the director comes to: the `ipvsadm -L -n --stats` listing with frame and
//! drop counts, as text or as one JSON object with the same content.

use dr_core::{Director, DropReason, ListingFormat, PassReason, Stats};
use serde_json::{Map, Value, json};
use std::fmt::Write;

/// The `--stats` listing, the frame counts, and a line per drop reason.
pub fn text(director: &Director) -> String {
    let c = director.counters();
    let mut out = director.listing(ListingFormat::Stats).to_string();
    let _ = writeln!(
        out,
        "\nframes: {} forwarded, {} replies, {} passed, {} dropped",
        c.forwarded(),
        c.replies(),
        c.passed(),
        c.dropped()
    );
    let _ = writeln!(
        out,
        "connections: {} created, {} expired ({} evicted, {} reused), {} in the table of {}",
        c.conns_created(),
        c.conns_expired(),
        c.conns_evicted(),
        c.conns_reused(),
        director.connection_count(),
        director.capacity()
    );
    let _ = writeln!(
        out,
        "templates: {} created, {} expired; icmp: {} relayed, {} echo replies; fragments: {} \
         forwarded",
        c.templates_created(),
        c.templates_expired(),
        c.icmp_relayed(),
        c.echo_replies(),
        c.fragments_forwarded()
    );
    for &reason in DropReason::ALL {
        let _ = writeln!(out, "drop {:<28} {}", reason.name(), c.drops(reason));
    }
    for &reason in PassReason::ALL {
        let _ = writeln!(out, "pass {:<28} {}", reason.name(), c.passes(reason));
    }
    out
}

/// Connection and packet events beyond the verdicts.
fn events(director: &Director) -> Value {
    let c = director.counters();
    json!({
        "conns_created": c.conns_created(),
        "conns_expired": c.conns_expired(),
        "conns_evicted": c.conns_evicted(),
        "conns_reused": c.conns_reused(),
        "one_packet_scheduled": c.one_packet_scheduled(),
        "templates_created": c.templates_created(),
        "templates_expired": c.templates_expired(),
        "icmp_relayed": c.icmp_relayed(),
        "echo_replies": c.echo_replies(),
        "fragments_forwarded": c.fragments_forwarded(),
        "neighbours_learned": c.neighbours_learned(),
        "neighbours_rejected": c.neighbours_rejected(),
    })
}

fn stats(s: &Stats) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("conns".into(), s.conns.into());
    m.insert("inpkts".into(), s.inpkts.into());
    m.insert("outpkts".into(), 0.into());
    m.insert("inbytes".into(), s.inbytes.into());
    m.insert("outbytes".into(), 0.into());
    m
}

/// The same as [`text`], as one JSON object.
pub fn json(director: &Director) -> Value {
    let services: Vec<Value> = director
        .services()
        .map(|(_, service)| {
            let key = service.key();
            let reals: Vec<Value> = service
                .reals()
                .iter()
                .filter_map(|&id| director.real(id))
                .map(|real| {
                    let mut m = stats(real.stats());
                    m.insert("addr".into(), real.addr().to_string().into());
                    m.insert("port".into(), key.port.into());
                    m.insert("weight".into(), real.weight().into());
                    m.insert("active".into(), real.active_conns().into());
                    m.insert("inactive".into(), real.inactive_conns().into());
                    Value::Object(m)
                })
                .collect();
            let mut m = stats(service.stats());
            m.insert("protocol".into(), key.protocol.name().into());
            m.insert("vip".into(), key.vip.to_string().into());
            m.insert("port".into(), key.port.into());
            m.insert("scheduler".into(), service.scheduler().name().into());
            m.insert("reals".into(), reals.into());
            Value::Object(m)
        })
        .collect();
    let c = director.counters();
    let drops: Map<String, Value> =
        DropReason::ALL.iter().map(|r| (r.name().to_string(), c.drops(*r).into())).collect();
    let passes: Map<String, Value> =
        PassReason::ALL.iter().map(|r| (r.name().to_string(), c.passes(*r).into())).collect();
    json!({
        "capacity": director.capacity(),
        "connections": director.connection_count(),
        "templates": director.template_count(),
        "events": events(director),
        "totals": Value::Object(stats(director.totals())),
        "services": services,
        "frames": {
            "forwarded": c.forwarded(),
            "replies": c.replies(),
            "passed": c.passed(),
            "dropped": c.dropped(),
        },
        "drops": drops,
        "passes": passes,
    })
}
