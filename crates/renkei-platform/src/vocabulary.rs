//! The platform's vocabulary that both sides must spell the same way: endpoint paths, fault
//! codes and item statuses. The gateway and the simulator import these from here, so neither
//! side reaches into the other's code for a string.

/// The one endpoint every protocol message is posted to.
pub const MESSAGES_PATH: &str = "/platform/v1/messages";
/// Where the platform serves its signed master information (マスター情報).
pub const MASTER_PATH: &str = "/platform/v1/master";

/// The platform's fault codes, as client tools match them verbatim.
pub mod faults {
    /// The person's code (符号) is not acquired yet for this unified address number.
    pub const CODE_NOT_ACQUIRED: &str = "E1001";
    /// The national permission table does not allow this (procedure, item).
    pub const NOT_PERMITTED: &str = "E1002";
    /// A record with this id was already registered with different content.
    pub const DUPLICATE_RECORD: &str = "E1003";
    /// The message's signature did not verify.
    pub const BAD_SIGNATURE: &str = "E1004";
    /// The message could not be read.
    pub const BAD_MESSAGE: &str = "E1005";
    /// No inquiry with this processing serial.
    pub const UNKNOWN_SERIAL: &str = "E1006";
    /// A copy version with this id was already registered with different content.
    pub const COPY_CONFLICT: &str = "E1007";
    /// A manual provision answer came after the request's deadline (the inquirer was told
    /// of a timeout).
    pub const MANUAL_TIMED_OUT: &str = "E1008";
    /// No manual provision request with this id for this city.
    pub const MANUAL_UNKNOWN: &str = "E1009";
    /// The manual provision request was answered already, differently.
    pub const MANUAL_ANSWERED: &str = "E1010";
    /// Outside operating hours (業務時間外).
    pub const CLOSED: &str = "E0503";
}

/// 照会ステータス（特定個人情報名単位）: per-item statuses of an answer.
pub mod item_status {
    /// Provided.
    pub const PROVIDED: &str = "01";
    /// The provider holds nothing for this person and condition.
    pub const NOT_HELD: &str = "03";
    /// Held, but withheld under 不開示 (non-disclosure).
    pub const WITHHELD: &str = "05";
}
