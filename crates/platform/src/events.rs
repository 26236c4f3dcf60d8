//! The published language on NATS JetStream: which stream holds which
//! subjects, which protobuf message travels on which subject, and the headers
//! every event carries.

use std::time::Duration;

use api::game::{gift, mission, reward, settlement, wallet};
use async_nats::jetstream::context::{CreateStreamError, CreateStreamErrorKind, GetStreamErrorKind};
use async_nats::jetstream::{self, stream};

/// JetStream's de-duplication header: the event id when first published.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";
/// The event id, which the inbox is keyed by. Equals `Nats-Msg-Id` except on
/// a dead letter re-driven by an operator, which needs a fresh `Nats-Msg-Id`
/// to get past JetStream's de-duplication while staying the same event.
pub const EVENT_ID_HEADER: &str = "Event-Id";
/// The fully qualified protobuf name of the payload.
pub const EVENT_TYPE_HEADER: &str = "Event-Type";
/// The correlation key of a mission's life, on every event of that life.
pub const MISSION_ID_HEADER: &str = "Mission-Id";
/// The player every view is keyed by.
pub const CUSTOMER_ID_HEADER: &str = "Customer-Id";
/// W3C trace context, carried from the outbox row to every consumer.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// Why an event was dead-lettered.
pub const DEAD_LETTER_REASON_HEADER: &str = "Dead-Letter-Reason";
/// The durable consumer that gave up on it.
pub const DEAD_LETTER_CONSUMER_HEADER: &str = "Dead-Letter-Consumer";
/// The subject it was published on.
pub const DEAD_LETTER_SUBJECT_HEADER: &str = "Dead-Letter-Subject";
/// Its sequence in its original stream.
pub const DEAD_LETTER_SEQUENCE_HEADER: &str = "Dead-Letter-Sequence";
/// How many times it was delivered before the consumer gave up.
pub const DEAD_LETTER_DELIVERIES_HEADER: &str = "Dead-Letter-Deliveries";

/// One JetStream stream per producing context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamDef {
    /// The stream's name, e.g. `MISSION`.
    pub name: &'static str,
    /// Subjects captured by the stream, e.g. `mission.>`.
    pub subjects: &'static str,
    /// How long events are kept: how long a consumer may be down and still
    /// catch up on everything it missed.
    pub keep_for: Duration,
}

const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

pub const MISSION_STREAM: StreamDef = StreamDef { name: "MISSION", subjects: "mission.>", keep_for: WEEK };
pub const REWARD_STREAM: StreamDef = StreamDef { name: "REWARD", subjects: "reward.>", keep_for: WEEK };
pub const WALLET_STREAM: StreamDef = StreamDef { name: "WALLET", subjects: "wallet.>", keep_for: WEEK };
pub const GIFT_STREAM: StreamDef = StreamDef { name: "GIFT", subjects: "gift.>", keep_for: WEEK };
pub const SETTLEMENT_STREAM: StreamDef = StreamDef { name: "SETTLEMENT", subjects: "settlement.>", keep_for: WEEK };
/// Events a consumer gave up on, on `deadletter.<consumer>`, kept for a
/// month for an operator to inspect and re-drive.
pub const DEAD_LETTER_STREAM: StreamDef =
    StreamDef { name: "DEADLETTER", subjects: "deadletter.>", keep_for: Duration::from_secs(30 * 24 * 3600) };

impl StreamDef {
    /// The stream configuration. Producers and consumers both create the
    /// stream at start (whoever comes first), so there is exactly one
    /// definition, here: a differing config would make the second create fail.
    pub fn config(&self) -> stream::Config {
        stream::Config {
            name: self.name.to_owned(),
            subjects: vec![self.subjects.to_owned()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            max_age: self.keep_for,
            // The outbox relay re-publishes after a crash with the same
            // Nats-Msg-Id; inside this window JetStream drops the copy (and
            // past it, the consumers' inbox does).
            duplicate_window: Duration::from_secs(10 * 60),
            ..Default::default()
        }
    }

    /// Creates the stream with one replica when it is missing, or leaves the
    /// existing one as it is: for tools and tests that read or feed a stream
    /// without owning its configuration. Services use [`StreamDef::declare`].
    ///
    /// # Errors
    /// When JetStream is unreachable or refuses the configuration.
    pub async fn ensure(&self, js: &jetstream::Context) -> Result<stream::Stream, async_nats::Error> {
        match js.get_stream(self.name).await {
            Ok(existing) => Ok(existing),
            Err(_) => Ok(js.get_or_create_stream(self.config()).await?),
        }
    }

    /// Creates the stream with `replicas` copies, or brings the existing one
    /// to that many: JetStream moves a clustered stream between replica
    /// counts while it keeps serving.
    ///
    /// # Errors
    /// [`TopologyError::Refused`] when JetStream answered no (more replicas
    /// than clustered servers, say), naming the stream, both counts and the
    /// server's reason; [`TopologyError::Unreachable`] when it did not answer.
    pub async fn declare(&self, js: &jetstream::Context, replicas: Replicas) -> Result<stream::Stream, TopologyError> {
        let wanted = replicas.get();
        let subject = || format!("stream {}", self.name);
        let existing = match js.get_stream(self.name).await {
            Ok(existing) => existing,
            Err(error) => match error.kind() {
                GetStreamErrorKind::JetStream(refusal) if refusal.code() == 404 => {
                    let config = stream::Config { num_replicas: wanted, ..self.config() };
                    return js
                        .create_stream(config)
                        .await
                        .map_err(|e| TopologyError::create(subject(), wanted, stream_refusal(&e), &e));
                }
                _ => return Err(TopologyError::unreachable(subject(), &error)),
            },
        };
        let actual = existing.cached_info().config.num_replicas.max(1);
        if actual == wanted {
            return Ok(existing);
        }
        let config = stream::Config { num_replicas: wanted, ..existing.cached_info().config.clone() };
        js.update_stream(&config)
            .await
            .map_err(|e| TopologyError::change(subject(), actual, wanted, stream_refusal(&e), &e))?;
        tracing::warn!(stream = self.name, from = actual, to = wanted, "stream replicas changed");
        js.get_stream(self.name).await.map_err(|e| TopologyError::unreachable(subject(), &e))
    }
}

/// How many copies JetStream keeps of every stream and durable consumer
/// (`STREAM_REPLICAS`): one on a single server, three on a cluster of three
/// so that losing a server loses nothing acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replicas(usize);

impl Replicas {
    /// One copy: a single server.
    pub const ONE: Self = Self(1);
    /// The most JetStream keeps.
    pub const MAX: usize = 5;

    /// `count` copies.
    ///
    /// # Errors
    /// When `count` is not 1 to 5.
    pub fn new(count: usize) -> Result<Self, ReplicasOutOfRange> {
        if (1..=Self::MAX).contains(&count) { Ok(Self(count)) } else { Err(ReplicasOutOfRange) }
    }

    /// The number of copies.
    pub fn get(self) -> usize {
        self.0
    }
}

impl Default for Replicas {
    fn default() -> Self {
        Self::ONE
    }
}

impl std::fmt::Display for Replicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A replica count JetStream does not support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("JetStream keeps 1 to 5 replicas of a stream")]
pub struct ReplicasOutOfRange;

impl std::str::FromStr for Replicas {
    type Err = ReplicasOutOfRange;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<usize>().map_err(|_| ReplicasOutOfRange).and_then(Self::new)
    }
}

/// Why a stream or a durable consumer could not be declared.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// JetStream answered, and said no: a service must not run against a
    /// stream kept with fewer copies than it was configured for.
    #[error("cannot {action}: the server refused: {reason}")]
    Refused { action: String, reason: String },
    /// JetStream did not answer (no server reachable, no meta leader yet).
    #[error("cannot declare {subject}: JetStream did not answer: {reason}")]
    Unreachable { subject: String, reason: String },
}

impl TopologyError {
    /// Creating `subject` with `wanted` replicas failed with `error`, which
    /// is the server's `refusal` when it answered no.
    pub fn create(subject: String, wanted: usize, refusal: Option<String>, error: &dyn std::fmt::Display) -> Self {
        match refusal {
            Some(reason) => Self::Refused { action: format!("create {subject} with {wanted} replicas"), reason },
            None => Self::Unreachable { subject, reason: error.to_string() },
        }
    }

    /// Changing `subject` from `actual` to `wanted` replicas failed with
    /// `error`, which is the server's `refusal` when it answered no.
    pub fn change(
        subject: String,
        actual: usize,
        wanted: usize,
        refusal: Option<String>,
        error: &dyn std::fmt::Display,
    ) -> Self {
        match refusal {
            Some(reason) => {
                Self::Refused { action: format!("change {subject} from {actual} to {wanted} replicas"), reason }
            }
            None => Self::Unreachable { subject, reason: error.to_string() },
        }
    }

    /// `subject` could not be read for `error`.
    pub fn unreachable(subject: String, error: &dyn std::fmt::Display) -> Self {
        Self::Unreachable { subject, reason: error.to_string() }
    }

    /// Whether JetStream answered no (as opposed to not answering).
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Refused { .. })
    }
}

/// The server's answer when JetStream said no to a request, `None` when it
/// did not answer: a 503 (no meta leader, JetStream not ready) is an
/// absence, not an answer.
pub fn refusal(answer: Option<&jetstream::Error>) -> Option<String> {
    answer.filter(|error| error.code() != 503).map(ToString::to_string)
}

fn stream_refusal(error: &CreateStreamError) -> Option<String> {
    match error.kind() {
        CreateStreamErrorKind::JetStream(answer) => refusal(Some(&answer)),
        _ => None,
    }
}

/// Who an event is about: the correlation keys carried as headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correlation {
    pub mission_id: String,
    pub customer_id: String,
}

/// A protobuf message that is published as a domain event.
pub trait Event: prost::Message + Default + Sized {
    /// The subject the event is published on.
    const SUBJECT: &'static str;
    /// The fully qualified protobuf name, carried in the `Event-Type` header.
    const TYPE: &'static str;
    /// The stream the subject belongs to.
    const STREAM: StreamDef;

    /// The event's unique id, used as `Nats-Msg-Id` and inbox key.
    fn event_id(&self) -> &str;
    /// The correlation keys of the event.
    fn correlation(&self) -> Correlation;
}

/// `$ty` is published on `$subject` of `$stream`, with the correlation keys
/// `$correlation` computes from the event.
macro_rules! event {
    ($ty:ty, $type_name:literal, $subject:literal, $stream:expr, |$event:ident| $correlation:expr) => {
        impl Event for $ty {
            const SUBJECT: &'static str = $subject;
            const TYPE: &'static str = $type_name;
            const STREAM: StreamDef = $stream;

            fn event_id(&self) -> &str {
                &self.event_id
            }

            fn correlation(&self) -> Correlation {
                let $event = self;
                $correlation
            }
        }
    };
}

/// An event of a mission's life, correlated by its mission and player.
macro_rules! published_event {
    ($ty:ty, $type_name:literal, $subject:literal, $stream:expr) => {
        event!($ty, $type_name, $subject, $stream, |event| Correlation {
            mission_id: event.mission_id.clone(),
            customer_id: event.customer_id.clone(),
        });
    };
}

published_event!(mission::v1::MissionAchieved, "game.mission.v1.MissionAchieved", "mission.achieved", MISSION_STREAM);
published_event!(reward::v1::RewardAllocated, "game.reward.v1.RewardAllocated", "reward.allocated", REWARD_STREAM);
published_event!(wallet::v1::RewardIssued, "game.wallet.v1.RewardIssued", "wallet.reward_issued", WALLET_STREAM);
published_event!(
    wallet::v1::RewardExchanged,
    "game.wallet.v1.RewardExchanged",
    "wallet.reward_exchanged",
    WALLET_STREAM
);
published_event!(wallet::v1::PointsExpired, "game.wallet.v1.PointsExpired", "wallet.points_expired", WALLET_STREAM);

/// An event of a player's exchange, which may be paid from the rewards of
/// several missions: correlated by its player alone.
macro_rules! exchange_event {
    ($ty:ty, $type_name:literal, $subject:literal, $stream:expr) => {
        event!($ty, $type_name, $subject, $stream, |event| Correlation {
            mission_id: String::new(),
            customer_id: event.customer_id.clone(),
        });
    };
}

exchange_event!(wallet::v1::ExchangePlaced, "game.wallet.v1.ExchangePlaced", "wallet.exchange_placed", WALLET_STREAM);
exchange_event!(wallet::v1::PointsRefunded, "game.wallet.v1.PointsRefunded", "wallet.points_refunded", WALLET_STREAM);
published_event!(gift::v1::GiftExchanged, "game.gift.v1.GiftExchanged", "gift.exchanged", GIFT_STREAM);
published_event!(gift::v1::GiftOrderCancelled, "game.gift.v1.GiftOrderCancelled", "gift.order_cancelled", GIFT_STREAM);
published_event!(
    settlement::v1::SettlementRecorded,
    "game.settlement.v1.SettlementRecorded",
    "settlement.recorded",
    SETTLEMENT_STREAM
);
published_event!(
    settlement::v1::SettlementReversed,
    "game.settlement.v1.SettlementReversed",
    "settlement.reversed",
    SETTLEMENT_STREAM
);

/// A change to the programme or the books (an operator's, or the settlement
/// closing job's), published as its audit record: it concerns no mission's
/// life and no player, so it carries no correlation keys.
macro_rules! audit_event {
    ($ty:ty, $type_name:literal, $subject:literal, $stream:expr) => {
        event!($ty, $type_name, $subject, $stream, |_event| Correlation {
            mission_id: String::new(),
            customer_id: String::new()
        });
    };
}

audit_event!(
    mission::v1::ProgrammeEventScheduled,
    "game.mission.v1.ProgrammeEventScheduled",
    "mission.event_scheduled",
    MISSION_STREAM
);
audit_event!(mission::v1::MissionDefined, "game.mission.v1.MissionDefined", "mission.mission_defined", MISSION_STREAM);
audit_event!(
    settlement::v1::SettlementPeriodClosed,
    "game.settlement.v1.SettlementPeriodClosed",
    "settlement.period_closed",
    SETTLEMENT_STREAM
);
audit_event!(gift::v1::ProductListed, "game.gift.v1.ProductListed", "gift.product_listed", GIFT_STREAM);
audit_event!(gift::v1::ProductRestocked, "game.gift.v1.ProductRestocked", "gift.product_restocked", GIFT_STREAM);

/// Converts stored milliseconds into a protobuf timestamp.
pub fn timestamp(millis: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: i32::try_from(millis.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

/// Converts a protobuf timestamp into milliseconds; a missing one is 0.
pub fn millis(timestamp: Option<&prost_types::Timestamp>) -> i64 {
    timestamp.map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subject_belongs_to_its_stream() {
        fn check<E: Event>() {
            let prefix = E::STREAM.subjects.trim_end_matches('>');
            assert!(E::SUBJECT.starts_with(prefix), "{} not in {}", E::SUBJECT, E::STREAM.name);
        }
        check::<mission::v1::MissionAchieved>();
        check::<mission::v1::ProgrammeEventScheduled>();
        check::<mission::v1::MissionDefined>();
        check::<reward::v1::RewardAllocated>();
        check::<wallet::v1::RewardIssued>();
        check::<wallet::v1::RewardExchanged>();
        check::<wallet::v1::PointsExpired>();
        check::<gift::v1::GiftExchanged>();
        check::<gift::v1::GiftOrderCancelled>();
        check::<gift::v1::ProductListed>();
        check::<gift::v1::ProductRestocked>();
        check::<settlement::v1::SettlementRecorded>();
        check::<settlement::v1::SettlementReversed>();
        check::<settlement::v1::SettlementPeriodClosed>();
    }

    #[test]
    fn event_types_are_declared_in_the_contracts() {
        use prost::Message as _;
        let set = prost_types::FileDescriptorSet::decode(api::FILE_DESCRIPTOR_SET).expect("valid descriptor set");
        let declared: Vec<String> = set
            .file
            .iter()
            .flat_map(|f| f.message_type.iter().map(move |m| format!("{}.{}", f.package(), m.name())))
            .collect();
        for ty in [
            <mission::v1::MissionAchieved as Event>::TYPE,
            <mission::v1::ProgrammeEventScheduled as Event>::TYPE,
            <mission::v1::MissionDefined as Event>::TYPE,
            <reward::v1::RewardAllocated as Event>::TYPE,
            <wallet::v1::RewardIssued as Event>::TYPE,
            <wallet::v1::RewardExchanged as Event>::TYPE,
            <wallet::v1::PointsExpired as Event>::TYPE,
            <gift::v1::GiftExchanged as Event>::TYPE,
            <gift::v1::GiftOrderCancelled as Event>::TYPE,
            <gift::v1::ProductListed as Event>::TYPE,
            <gift::v1::ProductRestocked as Event>::TYPE,
            <settlement::v1::SettlementRecorded as Event>::TYPE,
            <settlement::v1::SettlementReversed as Event>::TYPE,
            <settlement::v1::SettlementPeriodClosed as Event>::TYPE,
        ] {
            assert!(declared.iter().any(|d| d == ty), "{ty} is not in proto/");
        }
    }

    #[test]
    fn replicas_are_one_to_five() {
        assert_eq!("3".parse::<Replicas>().map(Replicas::get), Ok(3));
        assert_eq!(Replicas::default(), Replicas::ONE);
        for bad in ["0", "6", "-1", "three", "1.5"] {
            assert_eq!(bad.parse::<Replicas>(), Err(ReplicasOutOfRange), "{bad}");
        }
        let error = crate::config::ConfigError::new("STREAM_REPLICAS", "7", ReplicasOutOfRange.to_string());
        assert_eq!(error.to_string(), "invalid STREAM_REPLICAS=\"7\": JetStream keeps 1 to 5 replicas of a stream");
    }

    #[test]
    fn refusals_name_the_stream_both_counts_and_the_reason() {
        let refused =
            TopologyError::change("stream MISSION".into(), 1, 3, Some("replicas > 1 not supported".into()), &"x");
        assert_eq!(
            refused.to_string(),
            "cannot change stream MISSION from 1 to 3 replicas: the server refused: replicas > 1 not supported"
        );
        assert!(refused.is_refusal());
        assert!(!TopologyError::create("stream MISSION".into(), 3, None, &"timed out").is_refusal());
    }

    #[test]
    fn timestamps_round_trip_through_millis() {
        for ms in [0, 1, 999, 1_764_000_000_123, -1] {
            assert_eq!(millis(Some(&timestamp(ms))), ms);
        }
    }
}
