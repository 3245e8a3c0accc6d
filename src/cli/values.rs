//! The closed sets of values options take (`--kind`, `--result`, `--status`, `--role`, a key
//! purpose): each a clap value enum mirroring the gateway's own enum, so clap refuses, with
//! the valid values, what the API would not accept.

/// A value enum for an option with a closed set of values, mirroring the gateway's own enum
/// `$target` variant for variant (the conversions are exhaustive matches both ways, so the
/// two cannot drift apart without a compile error); [`api_name`](Self::api_name) is the
/// serde name the API takes.
macro_rules! closed_set {
    ($(#[$m:meta])* $name:ident => $target:path { $($(#[$vm:meta])* $v:ident),* $(,)? }) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
        $(#[$m])*
        pub enum $name { $($(#[$vm])* $v),* }

        impl From<$name> for $target {
            fn from(v: $name) -> Self {
                match v { $($name::$v => <$target>::$v),* }
            }
        }

        impl From<$target> for $name {
            fn from(v: $target) -> Self {
                match v { $(<$target>::$v => $name::$v),* }
            }
        }

        impl $name {
            /// The value as the API spells it (the gateway enum's serde name).
            pub fn api_name(self) -> String {
                serde_json::to_value(<$target>::from(self))
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            }
        }
    };
}

closed_set! {
    /// A linkage record's kind (`audit query --kind`).
    #[value(rename_all = "snake_case")]
    KindArg => renkei_records::RecordKind {
        Inquiry, Provision, CodeAcquisition, DeniedRequest, StaffAction, KeyAction, RetentionSweep,
    }
}

closed_set! {
    /// How a linkage record ended (`audit query --result`).
    #[value(rename_all = "snake_case")]
    ResultArg => renkei_records::RecordResult {
        Answered, NotHeld, Refused, Failed, Accepted, Done,
    }
}

closed_set! {
    /// What a key is for (`keys rotate|retire PURPOSE`).
    PurposeArg => renkei_crypto::keyring::KeyPurpose {
        Signing, Sealing, AtRest, BlindIndex, Checkpoint,
    }
}

closed_set! {
    /// A client certificate holder's role (`clients add --role`).
    RoleArg => crate::config::Role {
        Business, Security, Auditor, Operator, Admin, ResidentFeed,
    }
}

closed_set! {
    /// Where an inquiry is (`inquiries list --status`).
    #[value(rename_all = "snake_case")]
    StatusArg => crate::inquiry::Status {
        Queued, AwaitingCode, Sent, Answered, Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    fn same_names<T: ValueEnum + Copy>(api: impl Fn(T) -> String) {
        for v in T::value_variants() {
            let shown = v.to_possible_value().map(|p| p.get_name().to_string());
            assert_eq!(shown, Some(api(*v)));
        }
    }

    #[test]
    fn every_value_is_spelled_as_the_api_spells_it() {
        same_names(KindArg::api_name);
        same_names(ResultArg::api_name);
        same_names(PurposeArg::api_name);
        same_names(RoleArg::api_name);
        same_names(StatusArg::api_name);
    }
}
