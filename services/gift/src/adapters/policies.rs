//! The gift context's reactions to other contexts' events.

use api::game::mission::v1::ProgrammeEventScheduled;
use kernel::programme::{ProgrammeEventId, Window};
use platform::consumer::{Policy, PolicyError, ReceivedEvent};
use platform::db::DbConnection;
use platform::events::{Event as _, MISSION_STREAM, StreamDef, millis};
use platform::store::DbTx;

use crate::app;
use crate::domain::catalogue::ProgrammeEvent;

/// On ProgrammeEventScheduled: keep the event's window, in which the
/// products listed in it are sold. Gift learns the programme this way and
/// never calls the mission context.
#[derive(Debug, Default)]
pub struct KeepProgrammeEvent;

impl Policy for KeepProgrammeEvent {
    fn name(&self) -> &'static str {
        "gift-keep-programme-event"
    }

    fn stream(&self) -> StreamDef {
        MISSION_STREAM
    }

    fn subjects(&self) -> Vec<String> {
        vec![ProgrammeEventScheduled::SUBJECT.to_owned()]
    }

    fn apply(&self, conn: &mut DbConnection, event: &ReceivedEvent) -> Result<(), PolicyError> {
        let scheduled: ProgrammeEventScheduled = event.decode()?;
        let event = programme_event(&scheduled)?;
        // The effect joins the consumer's transaction, inbox and all.
        app::keep_programme_event(&mut DbTx::new(conn), &event)?;
        Ok(())
    }
}

fn programme_event(scheduled: &ProgrammeEventScheduled) -> Result<ProgrammeEvent, PolicyError> {
    let malformed = |field: &str, e: &dyn std::fmt::Display| PolicyError::Malformed(format!("{field} {e}"));
    let event = scheduled.programme_event.as_ref().ok_or_else(|| malformed("programme_event", &"is missing"))?;
    let id = ProgrammeEventId::parse(&event.programme_event_id).map_err(|e| malformed("programme_event_id", &e))?;
    let starts_at = event.starts_at.as_ref().ok_or_else(|| malformed("starts_at", &"is missing"))?;
    let window = Window::from_times(millis(Some(starts_at)), event.ends_at.as_ref().map(|t| millis(Some(t))))
        .map_err(|e| malformed("ends_at", &e))?;
    Ok(ProgrammeEvent { id, window })
}
