//! The mission catalogue as the mission service serves it
//! (`ListMissionDefinitions`): a load asks for the codes once before it
//! starts, so that the catalogue is kept in one place, the mission
//! service's store, and a load follows it when it changes.

use std::sync::Arc;

use anyhow::Context as _;
use api::game::mission::v1::{self as mission, mission_service_client::MissionServiceClient};
use tonic::transport::Channel;

/// The missions a player can achieve, each once, with the points their
/// rewards are worth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    definitions: Arc<[mission::MissionDefinition]>,
}

impl Catalogue {
    /// Asks the mission service (or the gateway in front of it) for its
    /// catalogue; `request` carries whatever credentials the path needs.
    ///
    /// # Errors
    /// When the call fails or the catalogue is empty.
    pub async fn fetch(
        mut missions: MissionServiceClient<Channel>,
        request: tonic::Request<mission::ListMissionDefinitionsRequest>,
    ) -> anyhow::Result<Self> {
        let definitions = missions
            .list_mission_definitions(request)
            .await
            .context("cannot read the mission catalogue (ListMissionDefinitions)")?
            .into_inner()
            .definitions;
        Self::of(definitions).map_err(anyhow::Error::msg)
    }

    /// A catalogue of these definitions.
    ///
    /// # Errors
    /// When there are none: no load can be made of an empty catalogue.
    pub fn of(definitions: Vec<mission::MissionDefinition>) -> Result<Self, String> {
        if definitions.is_empty() {
            return Err("the mission catalogue is empty".into());
        }
        Ok(Self { definitions: definitions.into() })
    }

    /// The definitions, in the order the service lists them.
    pub fn definitions(&self) -> &[mission::MissionDefinition] {
        &self.definitions
    }

    /// The mission codes, in the order the service lists them.
    pub fn codes(&self) -> impl ExactSizeIterator<Item = &str> {
        self.definitions.iter().map(|d| d.mission_code.as_str())
    }

    /// The first mission code listed.
    pub fn first_code(&self) -> &str {
        self.definitions.first().map_or("", |d| d.mission_code.as_str())
    }

    /// How many codes there are (never zero).
    pub fn len(&self) -> u64 {
        self.definitions.len() as u64
    }

    /// Never: a catalogue has at least one code.
    pub fn is_empty(&self) -> bool {
        self.definitions.is_empty()
    }

    /// The player of achievement `i` of a run: each achieves every code once.
    pub fn player(&self, i: u64) -> u64 {
        i / self.len()
    }

    /// The `i`-th first achievement of a run: players `<prefix>-0`,
    /// `<prefix>-1`, … each achieve every code once, so every call is a new
    /// mission.
    pub fn achieve_request(&self, prefix: &str, i: u64) -> mission::AchieveMissionRequest {
        let definition = &self.definitions[usize::try_from(i % self.len()).unwrap_or_default()];
        mission::AchieveMissionRequest {
            customer_id: format!("{prefix}-{}", self.player(i)),
            mission_code: definition.mission_code.clone(),
            achievement_id: None,
        }
    }
}

/// Definitions of these codes, worth 100, 200, … points: for tests of what
/// is built on a catalogue.
pub fn definitions(codes: &[&str]) -> Vec<mission::MissionDefinition> {
    (1..)
        .zip(codes)
        .map(|(n, code)| mission::MissionDefinition {
            mission_code: (*code).to_owned(),
            title: code.to_lowercase(),
            reward_points: 100 * n,
            ..mission::MissionDefinition::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        Catalogue::of(definitions(&["FIRST_LOGIN", "FIRST_WIN", "EVENT_CHAMPION"])).unwrap()
    }

    #[test]
    fn each_player_achieves_every_code_once() {
        let catalogue = catalogue();
        let requests: Vec<(String, String)> =
            (0..7).map(|i| catalogue.achieve_request("p", i)).map(|r| (r.customer_id, r.mission_code)).collect();
        assert_eq!(requests[0], ("p-0".into(), "FIRST_LOGIN".into()));
        assert_eq!(requests[2], ("p-0".into(), "EVENT_CHAMPION".into()));
        assert_eq!(requests[3], ("p-1".into(), "FIRST_LOGIN".into()));
        assert_eq!(catalogue.player(6), 2);
        let mut unique = requests.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), requests.len());
    }

    #[test]
    fn codes_are_listed_in_the_services_order() {
        let catalogue = catalogue();
        assert_eq!(catalogue.codes().collect::<Vec<_>>(), ["FIRST_LOGIN", "FIRST_WIN", "EVENT_CHAMPION"]);
        assert_eq!(catalogue.first_code(), "FIRST_LOGIN");
        assert_eq!(catalogue.definitions()[2].reward_points, 300);
    }

    #[test]
    fn an_empty_catalogue_is_refused() {
        assert_eq!(Catalogue::of(Vec::new()).unwrap_err(), "the mission catalogue is empty");
    }
}
