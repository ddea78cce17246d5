//! The capture reader on arbitrary bytes: pcap or pcapng, any record, any length field. It
//! must never panic and never hand out more bytes than a record holds.

#![no_main]

use dr_io_pcap::PcapSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut source) = PcapSource::from_reader(std::io::Cursor::new(data), "fuzz.pcap") else {
        return;
    };
    let mut frame = Vec::new();
    for _ in 0..1024 {
        match source.next_into(&mut frame) {
            Ok(Some(_)) => assert!(frame.len() <= data.len(), "a record larger than the file"),
            Ok(None) | Err(_) => break,
        }
    }
});
