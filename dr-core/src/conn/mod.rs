//! Connection entries: the table, the TCP state machine, timeouts and expiry.

mod evict;
mod index;
mod state;
mod table;
mod wheel;

pub use state::{ConnState, TimeoutSettings, Timeouts};
pub use table::MAX_CAPACITY;
pub(crate) use table::{
    Conn, ConnId, ConnTable, FLAG_ASSURED, FLAG_EXPIRE_LATER, FLAG_INACTIVE, FLAG_RETIRED,
    TEMPLATE_EXPIRE_LATER, expiry,
};
