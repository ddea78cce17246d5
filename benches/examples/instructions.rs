//! The established-flow path for an instruction count: `flows` established flows, each of
//! their data segments decided `rounds` times with `process_burst`. Run under callgrind
//! twice with different `rounds`; the difference divided by the extra frames is the
//! instructions per frame, whatever else the machine is doing (`benches/scripts/instructions`).
//!
//! Usage: `instructions FLOWS ROUNDS [process]` (`process`: one frame at a time instead).

use dr_core::{BURST, DropReason, Instant, Verdict};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let number = |i: usize, default: usize| {
        args.get(i).map_or(Ok(default), |a| a.parse::<usize>()).unwrap_or_else(|_| {
            eprintln!("usage: instructions FLOWS ROUNDS [process]");
            std::process::exit(2)
        })
    };
    let (flows, rounds) = (number(1, 1000), number(2, 1));
    let one_by_one = args.get(3).is_some_and(|a| a == "process");
    let (mut director, frames) = dr_benches::established(flows, 4);
    let mut frames = frames;
    let mut verdicts = vec![Verdict::Drop(DropReason::MalformedEthernet); BURST];
    let now = Instant::from_secs(2);
    let mut forwarded = 0usize;
    for _ in 0..rounds {
        // A forwarded frame leaves for its real server from the director: make it the
        // router's to the director again (a 12-byte copy per frame, counted).
        for frame in &mut frames {
            frame[0..6].copy_from_slice(&dr_benches::DIRECTOR_MAC);
            frame[6..12].copy_from_slice(&dr_benches::ROUTER_MAC);
        }
        if one_by_one {
            for frame in &mut frames {
                forwarded += usize::from(director.process(now, frame).is_transmit());
            }
        } else {
            for chunk in frames.chunks_mut(BURST) {
                let n = director.process_burst(now, chunk, &mut verdicts);
                forwarded += verdicts[..n].iter().filter(|v| v.is_transmit()).count();
            }
        }
    }
    assert_eq!(forwarded, flows * rounds, "every frame forwarded");
    println!("{forwarded}");
}
