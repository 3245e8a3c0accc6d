//! The platform client: how the gateway talks to the national platform ([`client`]: one
//! signed XML message out, one verified answer back) and how it treats the platform's
//! closed hours and failures ([`policy`]: backoff, one shared pause, the operating window);
//! [`alive`] sends the alive notification (稼動状態の通知) on a schedule.
//!
//! The protocol's documents and vocabulary live in `renkei_platform`, shared with the
//! simulator; nothing here is used by the simulator.

pub mod alive;
pub mod client;
pub mod policy;

pub use client::{Uplink, UplinkError};
pub use policy::Policy;
