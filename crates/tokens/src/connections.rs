//! Connected accounts (issue #25), header mode: a server whose users each bring their own
//! credential for one header (a personal access token, an API key). Values are sealed here,
//! bound to (server, person), and opened only into the gateway's cached entry.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tessera_core::sealed::SealError;
use tessera_core::upstream::{InvalidUpstream, UpstreamHeader};
use tessera_store::{Actor, ConnectionRecord, ServerRecord, UserAuth};
use uuid::Uuid;

use crate::servers::{ServerError, ServerService};

/// How a server's users bring their own credential, as asked at registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalHeader {
    /// The header (e.g. `X-Api-Key`, or `Authorization`).
    pub header: String,
    /// Put before each person's value (`"Bearer "` for `Authorization`).
    pub prefix: String,
}

impl PersonalHeader {
    /// Checks the header name and prefix (the name as any upstream header's; the prefix
    /// printable and short).
    pub fn new(header: &str, prefix: &str) -> Result<Self, InvalidUpstream> {
        let probe = UpstreamHeader::new(header, "x")?;
        if prefix.len() > 32 || !prefix.bytes().all(|b| (b' '..=b'~').contains(&b)) {
            return Err(InvalidUpstream::Header);
        }
        Ok(Self { header: probe.name().to_owned(), prefix: prefix.to_owned() })
    }
}

/// The people's credentials of a server, opened (the gateway's cached view). `Debug` hides
/// the values.
#[derive(Clone)]
pub struct PersonalCredentials {
    /// How they are sent.
    pub auth: UserAuth,
    /// Each connected person's header, prefix included.
    pub by_user: HashMap<Uuid, UpstreamHeader>,
}

impl std::fmt::Debug for PersonalCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonalCredentials").field("auth", &self.auth).field("connected", &self.by_user.len()).finish()
    }
}

fn context(server: Uuid, user: Uuid) -> Vec<u8> {
    format!("connection/{server}/{user}").into_bytes()
}

impl ServerService {
    /// Makes server `name`'s users bring their own credential in `personal` (`None`: stop,
    /// forgetting every connection).
    pub async fn set_personal_header(
        &self,
        actor: &Actor,
        name: &str,
        personal: Option<&PersonalHeader>,
    ) -> Result<(), ServerError> {
        let auth = personal.map(|p| UserAuth { header: p.header.clone(), prefix: p.prefix.clone(), oauth: None });
        if !self.store().set_user_auth(actor, name, auth.as_ref()).await? {
            return Err(ServerError::NotFound);
        }
        self.forget(name);
        Ok(())
    }

    /// How server `record`'s users bring their own credential, if they do.
    pub async fn personal_header(&self, record: &ServerRecord) -> Result<Option<UserAuth>, ServerError> {
        Ok(self.store().user_auth(record.id).await?)
    }

    /// Stores `user_id`'s own credential for server `name` (replacing any earlier one).
    pub async fn connect(
        &self,
        actor: &Actor,
        user_id: Uuid,
        name: &str,
        value: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ServerError> {
        let record = self.get(name).await?;
        let auth = self.store().user_auth(record.id).await?.ok_or(ServerError::NotPersonal)?;
        if auth.oauth.is_some() {
            // Its tokens come from the upstream's authorization server, never typed in.
            return Err(ServerError::NotPersonal);
        }
        // Checked as the header it will be, so a value the upstream could never get is refused now.
        let header = UpstreamHeader::new(&auth.header, &format!("{}{}", auth.prefix, value.trim()))?;
        if value.trim().is_empty() {
            return Err(InvalidUpstream::Header.into());
        }
        let sealed = self.sealing_key()?.seal(header.expose_value().as_bytes(), &context(record.id, user_id));
        self.store().put_connection(actor, user_id, record.id, name, &sealed, now).await?;
        self.forget(name);
        Ok(())
    }

    /// Forgets `user_id`'s credential for server `name`; false when there was none.
    pub async fn disconnect(&self, actor: &Actor, user_id: Uuid, name: &str) -> Result<bool, ServerError> {
        let record = self.get(name).await?;
        let held = self.store().connection(user_id, record.id).await?;
        let gone = self.store().delete_connection(actor, user_id, record.id, name).await?;
        self.forget(name);
        if let Some(("oauth", sealed)) = held.as_ref().map(|(k, s)| (k.as_str(), s)) {
            self.revoke_upstream(&record, user_id, sealed).await;
        }
        Ok(gone)
    }

    /// Connections without their secrets: one person's, or everyone's (`None`).
    pub async fn connections(&self, user_id: Option<Uuid>) -> Result<Vec<ConnectionRecord>, ServerError> {
        Ok(self.store().connections(user_id).await?)
    }

    /// The servers whose users bring their own credential.
    pub async fn personal_servers(&self) -> Result<Vec<(String, UserAuth)>, ServerError> {
        Ok(self.store().personal_servers().await?)
    }

    /// Every person's credential for `record`, opened, for the gateway's cache (`None` when
    /// the server's users do not bring their own).
    pub(crate) async fn open_personal(
        &self,
        record: &ServerRecord,
    ) -> Result<Option<PersonalCredentials>, ServerError> {
        let Some(auth) = self.store().user_auth(record.id).await? else { return Ok(None) };
        let sealed = self.store().server_connections(record.id).await?;
        let mut by_user = HashMap::with_capacity(sealed.len());
        if !sealed.is_empty() {
            let key = self.sealing_key()?;
            for (user, value) in sealed {
                let opened = if auth.oauth.is_some() {
                    let (access, _) = crate::oauth_connections::open_tokens(&key, record.id, user, &value)?;
                    zeroize::Zeroizing::new(format!("{}{}", auth.prefix, access.as_str()))
                } else {
                    let opened = key.open(&value, &context(record.id, user))?;
                    zeroize::Zeroizing::new(String::from_utf8(opened).map_err(|_| SealError::Open)?)
                };
                by_user.insert(user, UpstreamHeader::new(&auth.header, &opened)?);
            }
        }
        Ok(Some(PersonalCredentials { auth, by_user }))
    }
}
