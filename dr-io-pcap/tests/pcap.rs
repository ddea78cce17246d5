//! Reading and writing captures: formats, timestamp resolutions, link types, short and
//! corrupt records, replay determinism and the tee.

use dr_core::{
    Config, Director, Driver, DriverOptions, FrameIo, Instant, MacAddr, MemoryIo, Protocol,
    RealConfig, SchedulerKind, ServiceConfig, Verdict,
};
use dr_io_pcap::{PcapIoError, PcapReplay, PcapSink, PcapSource, Tee};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::{DataLink, TsResolution};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol,
    Ipv4Address, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr,
};
use std::borrow::Cow;
use std::time::Duration;

const DIRECTOR: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const ROUTER: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
const REAL: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];

/// A UDP datagram from 192.0.2.7:`port` to 10.0.0.100:53, built with smoltcp.
fn udp_frame(port: u16) -> Vec<u8> {
    let (src, dst) = (Ipv4Address::new(192, 0, 2, 7), Ipv4Address::new(10, 0, 0, 100));
    let udp = UdpRepr { src_port: port, dst_port: 53 };
    let payload = b"query";
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Udp,
        payload_len: 8 + payload.len(),
        hop_limit: 64,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(ROUTER),
        dst_addr: EthernetAddress(DIRECTOR),
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut buf = vec![0u8; 14 + 20 + 8 + payload.len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf);
    eth.emit(&mut frame);
    let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut packet, &ChecksumCapabilities::default());
    let mut datagram = UdpPacket::new_unchecked(packet.payload_mut());
    udp.emit(
        &mut datagram,
        &IpAddress::Ipv4(src),
        &IpAddress::Ipv4(dst),
        payload.len(),
        |p| p.copy_from_slice(payload),
        &ChecksumCapabilities::default(),
    );
    buf
}

fn pcap_bytes(
    resolution: TsResolution,
    datalink: DataLink,
    packets: &[(Duration, u32, Vec<u8>)],
) -> Vec<u8> {
    let header = PcapHeader { datalink, ts_resolution: resolution, ..PcapHeader::default() };
    let mut writer = PcapWriter::with_header(Vec::new(), header).unwrap();
    for (ts, orig_len, data) in packets {
        writer.write_packet(&PcapPacket::new(*ts, *orig_len, data)).unwrap();
    }
    writer.into_writer()
}

fn read_all(bytes: &[u8]) -> Result<Vec<(Instant, u32, Vec<u8>)>, PcapIoError> {
    let mut source = PcapSource::from_reader(bytes, "test.pcap")?;
    let mut out = Vec::new();
    let mut frame = Vec::new();
    while let Some(info) = source.next_into(&mut frame)? {
        out.push((info.timestamp, info.orig_len, frame.clone()));
    }
    Ok(out)
}

#[test]
fn sink_and_source_round_trip_nanoseconds() {
    let frames: Vec<Vec<u8>> = (0..5).map(udp_frame).collect();
    let mut sink = PcapSink::from_writer(Vec::new(), "out.pcap").unwrap();
    for (i, f) in frames.iter().enumerate() {
        sink.write(Instant::from_nanos(1_700_000_000_123_456_789 + i as u64), f).unwrap();
    }
    assert_eq!(sink.records(), 5);
    let bytes = sink.finish().unwrap();
    let read = read_all(&bytes).unwrap();
    assert_eq!(read.len(), 5);
    for (i, (ts, orig_len, data)) in read.iter().enumerate() {
        assert_eq!(ts.as_nanos(), 1_700_000_000_123_456_789 + i as u64);
        assert_eq!(*orig_len as usize, frames[i].len());
        assert_eq!(data, &frames[i]);
    }
}

#[test]
fn pcap_microseconds() {
    let bytes = pcap_bytes(
        TsResolution::MicroSecond,
        DataLink::ETHERNET,
        &[(Duration::new(1_700_000_000, 654_321_000), 47, udp_frame(1))],
    );
    let read = read_all(&bytes).unwrap();
    assert_eq!(read[0].0.as_nanos(), 1_700_000_000_654_321_000);
}

fn pcapng_bytes(
    linktype: DataLink,
    options: Vec<InterfaceDescriptionOption<'static>>,
    raw_ts: u64,
) -> Vec<u8> {
    let mut writer = PcapNgWriter::new(Vec::new()).unwrap();
    let mut idb = InterfaceDescriptionBlock::new(linktype, 65535);
    idb.options = options;
    writer.write_pcapng_block(idb).unwrap();
    let data = udp_frame(9);
    let epb = EnhancedPacketBlock {
        interface_id: 0,
        timestamp: Duration::from_nanos(raw_ts),
        original_len: data.len() as u32,
        data: Cow::Owned(data),
        options: vec![],
    };
    writer.write_pcapng_block(epb).unwrap();
    writer.into_inner()
}

#[test]
fn pcapng_timestamp_resolutions() {
    // No if_tsresol: microseconds.
    let read = read_all(&pcapng_bytes(DataLink::ETHERNET, vec![], 1_700_000_000_000_001)).unwrap();
    assert_eq!(read[0].0.as_nanos(), 1_700_000_000_000_001_000);
    // Nanoseconds.
    let read = read_all(&pcapng_bytes(
        DataLink::ETHERNET,
        vec![InterfaceDescriptionOption::IfTsResol(9)],
        42,
    ))
    .unwrap();
    assert_eq!(read[0].0.as_nanos(), 42);
    // Milliseconds, with a 100 s offset.
    let opts =
        vec![InterfaceDescriptionOption::IfTsResol(3), InterfaceDescriptionOption::IfTsOffset(100)];
    let read = read_all(&pcapng_bytes(DataLink::ETHERNET, opts, 1_500)).unwrap();
    assert_eq!(read[0].0.as_nanos(), 101_500_000_000);
    // 2^-10 seconds: 1024 ticks = 1 s.
    let read = read_all(&pcapng_bytes(
        DataLink::ETHERNET,
        vec![InterfaceDescriptionOption::IfTsResol(0x80 | 10)],
        3 * 1024 + 512,
    ))
    .unwrap();
    assert_eq!(read[0].0.as_nanos(), 3_500_000_000);
}

#[test]
fn other_link_types_are_refused_with_the_record() {
    let pcap = pcap_bytes(TsResolution::MicroSecond, DataLink::LINUX_SLL, &[]);
    let err = PcapSource::from_reader(&pcap[..], "sll.pcap").unwrap_err();
    assert!(matches!(err, PcapIoError::LinkType { record: 0, linktype: 113, .. }), "{err}");
    assert!(err.to_string().contains("sll.pcap"), "{err}");
    let ng = pcapng_bytes(DataLink::RAW, vec![], 1);
    let err = read_all(&ng).unwrap_err();
    assert!(matches!(err, PcapIoError::LinkType { record: 1, .. }), "{err}");
}

#[test]
fn records_cut_short_are_returned_as_captured() {
    let frame = udp_frame(1);
    let bytes = pcap_bytes(
        TsResolution::NanoSecond,
        DataLink::ETHERNET,
        &[(Duration::ZERO, 1500, frame[..20].to_vec())],
    );
    let read = read_all(&bytes).unwrap();
    assert_eq!((read[0].1, read[0].2.len()), (1500, 20));
}

#[test]
fn corrupt_files_name_the_record() {
    let bytes = pcap_bytes(
        TsResolution::NanoSecond,
        DataLink::ETHERNET,
        &[(Duration::ZERO, 47, udp_frame(1)), (Duration::ZERO, 47, udp_frame(2))],
    );
    let cut = &bytes[..bytes.len() - 10];
    let err = read_all(cut).unwrap_err();
    assert!(matches!(err, PcapIoError::Corrupt { record: 2, .. }), "{err}");
    // The second record starts after the 24-byte file header and the first record (a 16-byte
    // record header and 47 bytes of frame).
    assert!(err.to_string().starts_with("test.pcap: record 2 (at byte 87) is corrupt"), "{err}");
    let err = PcapSource::from_reader(&b"this is not a capture at all"[..], "junk").unwrap_err();
    assert!(matches!(err, PcapIoError::NotACapture { .. }), "{err}");
    let err = PcapSource::from_reader(&b"ab"[..], "tiny").unwrap_err();
    assert!(matches!(err, PcapIoError::NotACapture { .. }), "{err}");
}

fn director() -> Director {
    let mut d = Director::new(Config::new(MacAddr(DIRECTOR), [1, 2, 3, 4])).unwrap();
    let s = d
        .add_service(ServiceConfig::new(
            Protocol::Udp,
            "10.0.0.100".parse().unwrap(),
            53,
            SchedulerKind::Rr,
        ))
        .unwrap();
    d.add_real(s, RealConfig::new("10.0.0.11".parse().unwrap()).with_mac(MacAddr(REAL))).unwrap();
    d
}

fn replay(input: &[u8]) -> Vec<u8> {
    let source = PcapSource::from_reader(input, "in.pcap").unwrap();
    let sink = PcapSink::from_writer(Vec::new(), "out.pcap").unwrap();
    let mut io = PcapReplay::new(source, sink, 3).unwrap();
    let mut d = director();
    Driver::new(DriverOptions::default()).run(&mut d, &mut io).unwrap();
    io.finish().unwrap()
}

#[test]
fn replay_is_deterministic_and_keeps_input_timestamps() {
    let packets: Vec<_> = (0..10u16)
        .map(|i| (Duration::from_millis(1_000 + u64::from(i)), 47, udp_frame(i % 4)))
        .collect();
    let input = pcap_bytes(TsResolution::NanoSecond, DataLink::ETHERNET, &packets);
    let a = replay(&input);
    let b = replay(&input);
    assert_eq!(a, b, "two replays differ");
    let out = read_all(&a).unwrap();
    // One announcement (stamped with the first record's time), then the ten datagrams.
    assert_eq!(out.len(), 11);
    assert_eq!(out[0].0, Instant::from_millis(1_000));
    for (i, (ts, _, frame)) in out[1..].iter().enumerate() {
        assert_eq!(*ts, Instant::from_millis(1_000 + i as u64));
        assert_eq!(&frame[0..6], &REAL);
        assert_eq!(&frame[12..], &packets[i].2[12..]);
    }
}

#[test]
fn tee_records_what_a_backend_receives_and_sends() {
    let mut memory = MemoryIo::new(8);
    memory.push(Instant::from_secs(1), udp_frame(1));
    memory.push(Instant::from_secs(2), vec![0u8; 20]); // dropped: not recorded as sent
    let rx = PcapSink::from_writer(Vec::new(), "rx.pcap").unwrap();
    let tx = PcapSink::from_writer(Vec::new(), "tx.pcap").unwrap();
    let mut tee = Tee::new(memory, rx, tx);
    let mut d = director();
    let batch = tee.process_batch(|now, frame| d.process(now, frame)).unwrap();
    assert_eq!((batch.frames, batch.transmitted), (2, 1));
    tee.send(Instant::from_secs(3), &udp_frame(5)).unwrap();
    assert_eq!(tee.now(), Instant::from_secs(2));
    let (inner, rx, tx) = tee.finish().unwrap();
    let rx = read_all(&rx).unwrap();
    let tx = read_all(&tx).unwrap();
    assert_eq!(rx.len(), 2);
    assert_eq!(&rx[0].2[0..6], &DIRECTOR, "received frames are recorded before the rewrite");
    assert_eq!(tx.len(), 2);
    assert_eq!(&tx[0].2[0..6], &REAL);
    assert_eq!(inner.transmitted().len(), 2);
    assert!(matches!(d.process(Instant::from_secs(4), &mut udp_frame(1)), Verdict::Forward { .. }));
}

#[test]
fn a_replay_hands_over_every_record_before_a_corrupt_one() {
    let packets: Vec<_> =
        (0..7u16).map(|i| (Duration::from_millis(u64::from(i)), 47, udp_frame(i))).collect();
    let bytes = pcap_bytes(TsResolution::NanoSecond, DataLink::ETHERNET, &packets);
    // The seventh record cut in its frame; the first one cut in its header.
    for (cut, good) in [(&bytes[..bytes.len() - 10], 6), (&bytes[..30], 0)] {
        let source = PcapSource::from_reader(cut, "cut.pcap").unwrap();
        let sink = PcapSink::from_writer(Vec::new(), "out.pcap").unwrap();
        let mut io = PcapReplay::new(source, sink, 4).unwrap();
        let mut handled = 0;
        let err = loop {
            match io.process_batch(|_, _| {
                handled += 1;
                Verdict::Pass(dr_core::PassReason::NotVip)
            }) {
                Ok(batch) => assert!(!batch.finished, "a cut capture does not end cleanly"),
                Err(e) => break e,
            }
        };
        assert_eq!(handled, good, "{err}");
        assert_eq!(io.records_read(), good as u64);
        let offset = 24 + good as u64 * (16 + 47);
        let record = good as u64 + 1;
        assert!(
            matches!(err, PcapIoError::Corrupt { record: r, offset: Some(o), .. } if r == record && o == offset),
            "{err}"
        );
    }
}
