//! The VLANs a director serves.
//!
//! A frame carries the tags it was sent with (none on the untagged LAN, one 802.1Q tag on a
//! VLAN, two with QinQ), and a director forwards or answers it with exactly those tags.
//! Which of them it serves is configuration: a frame on a VLAN the director does not serve
//! is never forwarded nor answered, but left to the host
//! ([`PassReason::VlanNotServed`](crate::PassReason::VlanNotServed)), since the real
//! servers and the VIPs are on the LANs the operator named.

use crate::wire::VlanTag;
use core::fmt;

/// The highest VLAN identifier (4095 is reserved).
pub const MAX_VLAN_ID: u16 = 4094;

/// How many tag pairs (QinQ) a set holds.
pub const MAX_STACKED_VLANS: usize = 16;

/// A set of VLANs: the untagged LAN (VLAN 0, which also covers priority-tagged frames, a tag
/// with identifier 0), single VLAN tags 1 ..= 4094, and up to [`MAX_STACKED_VLANS`] QinQ
/// pairs (outer, inner). The default is the untagged LAN alone.
#[derive(Clone, PartialEq, Eq)]
pub struct VlanSet {
    /// Bit `id` set: frames whose only tag has identifier `id` are served; bit 0: untagged.
    single: [u64; 64],
    stacked: heapless::Vec<[u16; 2], MAX_STACKED_VLANS>,
    any: bool,
}

/// A VLAN identifier out of range, or too many QinQ pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VlanError {
    /// Not 0 (untagged) to [`MAX_VLAN_ID`].
    Id(u16),
    /// More than [`MAX_STACKED_VLANS`] QinQ pairs.
    TooManyStacked,
}

impl fmt::Display for VlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(
                f,
                "VLAN {id} is out of range: give 1 to {MAX_VLAN_ID}, or 0 for the untagged LAN"
            ),
            Self::TooManyStacked => {
                write!(f, "more than {MAX_STACKED_VLANS} QinQ VLAN pairs: serve fewer")
            }
        }
    }
}

impl Default for VlanSet {
    fn default() -> Self {
        Self::untagged()
    }
}

impl VlanSet {
    /// No VLAN at all, not even the untagged LAN.
    pub const fn none() -> Self {
        Self { single: [0; 64], stacked: heapless::Vec::new(), any: false }
    }

    /// The untagged LAN only (the default).
    pub const fn untagged() -> Self {
        let mut set = Self::none();
        set.single[0] = 1;
        set
    }

    /// Every frame, whatever its tags: for replaying captures of several VLANs through one
    /// director.
    pub const fn any() -> Self {
        Self { single: [0; 64], stacked: heapless::Vec::new(), any: true }
    }

    /// Adds VLAN `id` (0: the untagged LAN).
    ///
    /// # Errors
    ///
    /// [`VlanError::Id`] above [`MAX_VLAN_ID`].
    pub fn insert(&mut self, id: u16) -> Result<(), VlanError> {
        if id > MAX_VLAN_ID {
            return Err(VlanError::Id(id));
        }
        self.single[usize::from(id / 64)] |= 1 << (id % 64);
        Ok(())
    }

    /// Adds the QinQ pair of an outer (service) tag `outer` and an inner (customer) tag
    /// `inner`.
    ///
    /// # Errors
    ///
    /// [`VlanError::Id`] for an identifier outside 1 ..= [`MAX_VLAN_ID`],
    /// [`VlanError::TooManyStacked`] when the set is full.
    pub fn insert_stacked(&mut self, outer: u16, inner: u16) -> Result<(), VlanError> {
        for id in [outer, inner] {
            if id == 0 || id > MAX_VLAN_ID {
                return Err(VlanError::Id(id));
            }
        }
        if self.stacked.contains(&[outer, inner]) {
            return Ok(());
        }
        self.stacked.push([outer, inner]).map_err(|_| VlanError::TooManyStacked)
    }

    /// Whether the set serves every frame.
    pub fn is_any(&self) -> bool {
        self.any
    }

    /// The single VLANs served, 0 for the untagged LAN, in increasing order.
    pub fn single(&self) -> impl Iterator<Item = u16> + '_ {
        (0..=MAX_VLAN_ID).filter(|id| self.single[usize::from(id / 64)] & (1 << (id % 64)) != 0)
    }

    /// The QinQ pairs served, as added.
    pub fn stacked(&self) -> impl Iterator<Item = (u16, u16)> + '_ {
        self.stacked.iter().map(|&[outer, inner]| (outer, inner))
    }

    /// Whether a frame with these tags (outermost first) is served.
    #[inline(always)]
    pub fn serves(&self, tags: &[VlanTag]) -> bool {
        match tags {
            [] => self.single[0] & 1 != 0 || self.any,
            [tag] => {
                let id = tag.id & 0x0fff;
                self.single[usize::from(id / 64)] & (1 << (id % 64)) != 0 || self.any
            }
            [outer, inner] => {
                self.any || self.stacked.iter().any(|&[o, i]| o == outer.id && i == inner.id)
            }
            _ => self.any,
        }
    }
}

impl fmt::Debug for VlanSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.any {
            return f.write_str("VlanSet(any)");
        }
        f.debug_struct("VlanSet")
            .field("single", &self.single().collect::<heapless::Vec<u16, 8>>())
            .field("stacked", &self.stacked)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn tag(id: u16) -> VlanTag {
        VlanTag { tpid: 0x8100, id }
    }

    #[test]
    fn the_default_serves_the_untagged_lan_and_priority_tags_only() {
        let set = VlanSet::default();
        assert!(set.serves(&[]));
        assert!(set.serves(&[tag(0)]), "a priority tag is the untagged LAN");
        assert!(!set.serves(&[tag(10)]));
        assert!(!set.serves(&[tag(100), tag(10)]));
    }

    #[test]
    fn single_and_stacked_vlans() {
        let mut set = VlanSet::none();
        set.insert(10).unwrap();
        set.insert(4094).unwrap();
        set.insert_stacked(100, 20).unwrap();
        assert!(!set.serves(&[]));
        assert!(set.serves(&[tag(10)]) && set.serves(&[tag(4094)]));
        assert!(!set.serves(&[tag(11)]) && !set.serves(&[tag(20)]));
        assert!(set.serves(&[VlanTag { tpid: 0x88a8, id: 100 }, tag(20)]));
        assert!(!set.serves(&[tag(20), tag(100)]), "the order of the tags matters");
        assert!(!set.serves(&[tag(100), tag(10)]));
        assert_eq!(set.single().collect::<heapless::Vec<u16, 4>>(), [10, 4094]);
        assert_eq!(set.insert(4095), Err(VlanError::Id(4095)));
        assert_eq!(set.insert_stacked(0, 5), Err(VlanError::Id(0)));
        for i in 1..MAX_STACKED_VLANS as u16 {
            set.insert_stacked(200, i).unwrap();
        }
        assert_eq!(set.insert_stacked(300, 1), Err(VlanError::TooManyStacked));
    }

    #[test]
    fn any_serves_everything() {
        let set = VlanSet::any();
        assert!(set.serves(&[]) && set.serves(&[tag(7)]) && set.serves(&[tag(1), tag(2)]));
    }
}
