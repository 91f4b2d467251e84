//! What the drill's clients did: every operation with its invocation and completion instants
//! and its outcome.

use serde::Serialize;

use super::linearizability::{RegisterAction, RegisterOp};

/// How an operation ended, as far as the client can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpOutcome {
    /// The service answered with success.
    Ok,
    /// The service refused it before doing anything (a ValidationException): not applied.
    Failed,
    /// Anything else (timeout, connection error, 5xx, another service error): it may or may
    /// not have taken effect.
    Unknown,
}

/// What an operation asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpAction {
    /// PutItem of this unique value.
    Write(String),
    /// Strongly consistent GetItem; what it saw when it succeeded (`None`: no item).
    Read(Option<String>),
}

/// Who ran an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    /// Workload client thread number.
    Client(u32),
    /// The check's final read of every key.
    FinalRead,
}

/// One operation of the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub by: Actor,
    /// The key number (key `k<n>`).
    pub key: u32,
    pub action: OpAction,
    /// Microseconds since the drill started, when the request was about to be sent.
    pub invoked_us: u64,
    /// Microseconds since the drill started, when the answer (or error) arrived.
    pub completed_us: u64,
    pub outcome: OpOutcome,
}

impl Op {
    /// The operation as the linearizability checker sees it: failed operations and reads of
    /// unknown outcome did nothing observable and give `None`.
    pub fn as_register_op(&self) -> Option<RegisterOp> {
        let action = match (&self.action, self.outcome) {
            (_, OpOutcome::Failed) | (OpAction::Read(_), OpOutcome::Unknown) => return None,
            (OpAction::Write(value), _) => RegisterAction::Write(value.clone()),
            (OpAction::Read(value), _) => RegisterAction::Read(value.clone()),
        };
        Some(RegisterOp {
            action,
            invoked: self.invoked_us,
            completed: (self.outcome == OpOutcome::Ok).then_some(self.completed_us),
            by: match self.by {
                Actor::Client(n) => format!("client {n}"),
                Actor::FinalRead => "final read".to_string(),
            },
        })
    }

    /// True for a PutItem the service acknowledged.
    pub fn is_acknowledged_write(&self) -> bool {
        matches!(self.action, OpAction::Write(_)) && self.outcome == OpOutcome::Ok
    }
}

/// The name of key number `n`.
pub fn key_name(n: u32) -> String {
    format!("k{n}")
}
