//! A small eBPF assembler: the few instructions the XDP program needs, forward jumps to
//! labels, and the 8-byte encoding the kernel takes (`struct bpf_insn`, in the machine's
//! byte order). No ELF, no compiler: the program is built here and loaded with `bpf()`.

/// A register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reg(u8);

/// Return value and helper results.
pub(crate) const R0: Reg = Reg(0);
/// First argument; the context on entry.
pub(crate) const R1: Reg = Reg(1);
/// Second argument.
pub(crate) const R2: Reg = Reg(2);
/// Third argument.
pub(crate) const R3: Reg = Reg(3);
/// Callee-saved.
pub(crate) const R6: Reg = Reg(6);
/// Callee-saved.
pub(crate) const R7: Reg = Reg(7);
/// Callee-saved.
pub(crate) const R8: Reg = Reg(8);
/// Callee-saved.
pub(crate) const R9: Reg = Reg(9);
/// The frame pointer (read only).
pub(crate) const R10: Reg = Reg(10);

/// A memory access width.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Size {
    /// One byte.
    B,
    /// Two bytes.
    H,
    /// Four bytes.
    W,
}

impl Size {
    fn bits(self) -> u8 {
        match self {
            Self::W => 0x00,
            Self::H => 0x08,
            Self::B => 0x10,
        }
    }
}

/// A jump condition, comparing a register with an immediate or with another register.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cond {
    /// `dst == imm`.
    EqImm(Reg, i32),
    /// `dst != imm`.
    NeImm(Reg, i32),
    /// `dst > src`, unsigned.
    GtReg(Reg, Reg),
}

/// A place in the program that jumps go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Label(usize);

/// One instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    dst: u8,
    src: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Self {
        Self { code, dst: dst.0, src: src.0, off, imm }
    }

    /// The kernel's encoding.
    pub(crate) fn encode(self) -> [u8; 8] {
        let mut out = [0u8; 8];
        out[0] = self.code;
        // The register nibbles: dst in the low one on little-endian machines.
        out[1] = if cfg!(target_endian = "little") {
            self.dst | (self.src << 4)
        } else {
            (self.dst << 4) | self.src
        };
        out[2..4].copy_from_slice(&self.off.to_ne_bytes());
        out[4..8].copy_from_slice(&self.imm.to_ne_bytes());
        out
    }
}

/// `BPF_PSEUDO_MAP_FD`: the immediate of an `ld_imm64` is a map's descriptor.
const PSEUDO_MAP_FD: u8 = 1;

/// The program being assembled.
#[derive(Debug, Default)]
pub(crate) struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, Label)>,
}

/// What can be wrong with an assembled program: a bug in the program's source, reported
/// rather than loaded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AsmError {
    /// A jump to a label never placed.
    Unplaced(usize),
    /// A jump too far for a 16-bit offset, or backwards.
    BadJump(usize),
}

impl Asm {
    /// A new label, placed later with [`place`](Self::place).
    pub(crate) fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Places `label` at the next instruction.
    pub(crate) fn place(&mut self, label: Label) {
        self.labels[label.0] = Some(self.insns.len());
    }

    fn push(&mut self, insn: Insn) {
        self.insns.push(insn);
    }

    /// `dst = *(size *)(src + off)`.
    pub(crate) fn load(&mut self, size: Size, dst: Reg, src: Reg, off: i16) {
        self.push(Insn::new(0x61 | size.bits(), dst, src, off, 0));
    }

    /// `*(size *)(dst + off) = src`.
    pub(crate) fn store(&mut self, size: Size, dst: Reg, off: i16, src: Reg) {
        self.push(Insn::new(0x63 | size.bits(), dst, src, off, 0));
    }

    /// `dst = imm` (64-bit, sign-extended).
    pub(crate) fn mov_imm(&mut self, dst: Reg, imm: i32) {
        self.push(Insn::new(0xb7, dst, R0, 0, imm));
    }

    /// `dst = src`.
    pub(crate) fn mov(&mut self, dst: Reg, src: Reg) {
        self.push(Insn::new(0xbf, dst, src, 0, 0));
    }

    /// `dst += imm`.
    pub(crate) fn add_imm(&mut self, dst: Reg, imm: i32) {
        self.push(Insn::new(0x07, dst, R0, 0, imm));
    }

    /// `dst = map` (the two-slot `ld_imm64` with a map descriptor).
    pub(crate) fn load_map(&mut self, dst: Reg, map_fd: i32) {
        self.push(Insn::new(0x18, dst, Reg(PSEUDO_MAP_FD), 0, map_fd));
        self.push(Insn::new(0x00, R0, R0, 0, 0));
    }

    /// Calls helper `id`.
    pub(crate) fn call(&mut self, id: i32) {
        self.push(Insn::new(0x85, R0, R0, 0, id));
    }

    /// Returns `r0`.
    pub(crate) fn exit(&mut self) {
        self.push(Insn::new(0x95, R0, R0, 0, 0));
    }

    /// Jumps to `to` when `cond` holds.
    pub(crate) fn jump_if(&mut self, cond: Cond, to: Label) {
        let insn = match cond {
            Cond::EqImm(dst, imm) => Insn::new(0x15, dst, R0, 0, imm),
            Cond::NeImm(dst, imm) => Insn::new(0x55, dst, R0, 0, imm),
            Cond::GtReg(dst, src) => Insn::new(0x2d, dst, src, 0, 0),
        };
        self.fixups.push((self.insns.len(), to));
        self.push(insn);
    }

    /// Jumps to `to`.
    pub(crate) fn jump(&mut self, to: Label) {
        self.fixups.push((self.insns.len(), to));
        self.push(Insn::new(0x05, R0, R0, 0, 0));
    }

    /// The finished program, every jump resolved (forward only: the verifier refuses
    /// loops, and the program has none).
    pub(crate) fn finish(mut self) -> Result<Vec<Insn>, AsmError> {
        for &(at, label) in &self.fixups {
            let target = self.labels[label.0].ok_or(AsmError::Unplaced(label.0))?;
            let off = target
                .checked_sub(at + 1)
                .and_then(|o| i16::try_from(o).ok())
                .ok_or(AsmError::BadJump(at))?;
            self.insns[at].off = off;
        }
        Ok(self.insns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_the_kernels() {
        // From the kernel's filter.h macros: BPF_MOV64_IMM(BPF_REG_0, 2), BPF_EXIT_INSN(),
        // BPF_LDX_MEM(BPF_W, BPF_REG_7, BPF_REG_6, 4), BPF_ALU64_IMM(BPF_ADD, BPF_REG_2, 14).
        let mut asm = Asm::default();
        asm.mov_imm(R0, 2);
        asm.exit();
        asm.load(Size::W, R7, R6, 4);
        asm.add_imm(R2, 14);
        asm.store(Size::W, R10, -4, R1);
        asm.load_map(R1, 7);
        let insns = asm.finish().unwrap();
        let bytes: Vec<[u8; 8]> = insns.iter().map(|i| i.encode()).collect();
        assert_eq!(bytes[0], [0xb7, 0x00, 0, 0, 2, 0, 0, 0]);
        assert_eq!(bytes[1], [0x95, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[2], [0x61, 0x67, 4, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[3], [0x07, 0x02, 0, 0, 14, 0, 0, 0]);
        assert_eq!(bytes[4], [0x63, 0x1a, 0xfc, 0xff, 0, 0, 0, 0]);
        assert_eq!(bytes[5], [0x18, 0x11, 0, 0, 7, 0, 0, 0]);
        assert_eq!(bytes[6], [0; 8]);
    }

    #[test]
    fn jumps_count_from_the_next_instruction() {
        let mut asm = Asm::default();
        let end = asm.label();
        asm.jump_if(Cond::EqImm(R1, 5), end);
        asm.mov_imm(R0, 1);
        asm.jump(end);
        asm.mov_imm(R0, 3);
        asm.place(end);
        asm.exit();
        let insns = asm.finish().unwrap();
        assert_eq!(insns[0].off, 3);
        assert_eq!(insns[2].off, 1);
    }

    #[test]
    fn a_jump_to_nowhere_or_backwards_is_refused() {
        let mut asm = Asm::default();
        let nowhere = asm.label();
        asm.jump(nowhere);
        assert_eq!(asm.finish(), Err(AsmError::Unplaced(0)));
        let mut asm = Asm::default();
        let back = asm.label();
        asm.place(back);
        asm.mov_imm(R0, 0);
        asm.jump(back);
        assert_eq!(asm.finish(), Err(AsmError::BadJump(1)));
    }
}
