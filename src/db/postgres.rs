//! PostgreSQL: connections from a pool, `$1` placeholders, parameters converted to the
//! types the server expects, rows decoded by column type.
//!
//! Each connection drives its socket on a small runtime of its own, so that every wait
//! (connecting, authenticating, each statement) is cut at the request's budget, even when
//! the server stops answering; `statement_timeout` makes the server give up at the same
//! time.

use std::collections::HashMap;
use std::error::Error as _;
use std::str::FromStr;
use std::time::Duration;

use std::future::Future;

use rhai::{Dynamic, Map};
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};
use tokio::runtime::Runtime;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, Kind, ToSql, Type};
use tokio_postgres::{AsyncMessage, Client, NoTls, Socket, Statement};
use tokio_postgres_rustls_improved::MakeRustlsConnect;

use super::dialect::numbered_placeholders;
use super::iso;
use super::pool::Manager;
use super::tls;
use super::{Connection, DbError, Dialect, Executed, Notification, RowBytes};
use crate::env::scrub;

/// Prepared statements kept per connection before the cache starts over.
const STATEMENT_CACHE: usize = 256;

/// Opens connections to one PostgreSQL server.
pub struct PgManager {
    config: tokio_postgres::Config,
    /// `None`: plain TCP (see [`tls`] for what `sslmode` chooses).
    tls: Option<MakeRustlsConnect>,
    /// The URL's password, scrubbed from every message (it is part of an env value, but
    /// a message may quote it alone).
    password: Option<String>,
}

impl PgManager {
    /// Parses a `postgres://` URL; the error never quotes it.
    pub fn new(url: &str) -> Result<PgManager, DbError> {
        let (url, tls_mode) = tls::split_url(url).map_err(DbError::Config)?;
        let mut config = tokio_postgres::Config::from_str(&url).map_err(|_| {
            DbError::Config(
                "is not a valid postgres:// URL (postgres://user:password@host:port/db)".into(),
            )
        })?;
        config.application_name("rhapi");
        let tls = tls::connector(&tls_mode).map_err(DbError::Config)?;
        if tls.is_some() {
            // Never fall back to plain TCP when TLS was asked for.
            config.ssl_mode(SslMode::Require);
        }
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .filter(|p| !p.is_empty());
        Ok(PgManager {
            config,
            tls,
            password,
        })
    }
}

impl PgManager {
    /// Connects for a [`super::Listener`]: a task on the current runtime drives the
    /// connection all the time, sends each notification to `notifications`, and ends when
    /// the connection does (its handle tells the listener to reconnect).
    pub(super) async fn connect_listening(
        &self,
        timeout: Duration,
        notifications: UnboundedSender<Notification>,
    ) -> Result<(Client, JoinHandle<()>), DbError> {
        let mut config = self.config.clone();
        config.connect_timeout(timeout);
        config.application_name(super::listen::APPLICATION_NAME);
        // A connection that only listens sends nothing: keepalives find a dead peer.
        config.keepalives_idle(Duration::from_secs(30));
        let connecting = async {
            match &self.tls {
                Some(tls) => connect_driven(&config, tls.clone(), notifications).await,
                None => connect_driven(&config, NoTls, notifications).await,
            }
        };
        match tokio::time::timeout(timeout, connecting).await {
            Err(_) => Err(DbError::Timeout("connecting to PostgreSQL".into())),
            Ok(Err(err)) => Err(DbError::Connect(scrub(
                &with_cause(&err),
                self.password.as_deref(),
            ))),
            Ok(Ok(connected)) => Ok(connected),
        }
    }

    /// An error of a connection to this server, its password scrubbed.
    pub(super) fn error(&self, err: &tokio_postgres::Error) -> DbError {
        pg_error(err, self.password.as_deref())
    }
}

/// Connects, and spawns the task that drives the connection (see
/// [`PgManager::connect_listening`]).
async fn connect_driven<T>(
    config: &tokio_postgres::Config,
    tls: T,
    notifications: UnboundedSender<Notification>,
) -> Result<(Client, JoinHandle<()>), tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, mut connection) = config.connect(tls).await?;
    let driver = tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    let _ = notifications.send(Notification {
                        channel: n.channel().to_string(),
                        payload: n.payload().to_string(),
                    });
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    Ok((client, driver))
}

/// A PostgreSQL error as a message: the server's message, detail and hint, or the client's
/// error and its cause, with `password` scrubbed.
fn pg_error(err: &tokio_postgres::Error, password: Option<&str>) -> DbError {
    {
        if let Some(db) = err.as_db_error() {
            if *db.code() == SqlState::QUERY_CANCELED {
                return DbError::Timeout("running the statement".into());
            }
            let mut message = db.message().to_string();
            if let Some(detail) = db.detail() {
                message = format!("{message} ({detail})");
            }
            if let Some(hint) = db.hint() {
                message = format!("{message}; hint: {hint}");
            }
            return DbError::Sql(message);
        }
        DbError::Sql(scrub(&with_cause(err), password))
    }
}

/// An error and, when it has one, its cause: `error: cause`.
fn with_cause(err: &dyn std::error::Error) -> String {
    match err.source() {
        Some(source) => format!("{err}: {source}"),
        None => err.to_string(),
    }
}

/// A PostgreSQL connection and its prepared statements.
pub struct PgConn {
    runtime: Runtime,
    client: Client,
    /// Set when a wait was cut short: the connection's state is unknown, do not reuse it.
    broken: std::cell::Cell<bool>,
    statements: HashMap<String, Statement>,
    /// The `statement_timeout` last set on this session, in ms.
    timeout_ms: u64,
    /// The URL's password, scrubbed from messages.
    password: Option<String>,
}

/// Connects, and leaves the connection's socket to be driven by the current runtime
/// whenever it runs a call.
async fn open<T>(config: &tokio_postgres::Config, tls: T) -> Result<Client, tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = config.connect(tls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

impl Manager for PgManager {
    type Conn = PgConn;

    fn connect(&self, timeout: Duration) -> Result<PgConn, DbError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| DbError::Connect(format!("cannot start a client runtime: {err}")))?;
        let mut config = self.config.clone();
        config.connect_timeout(timeout);
        let connecting = async {
            let connecting = async {
                match &self.tls {
                    Some(tls) => open(&config, tls.clone()).await,
                    None => open(&config, NoTls).await,
                }
            };
            tokio::time::timeout(timeout, connecting).await
        };
        let client = match runtime.block_on(connecting) {
            Err(_) => return Err(DbError::Timeout("connecting to PostgreSQL".into())),
            Ok(Err(err)) => {
                let message = with_cause(&err);
                return Err(DbError::Connect(scrub(&message, self.password.as_deref())));
            }
            Ok(Ok(client)) => client,
        };
        Ok(PgConn {
            runtime,
            client,
            broken: std::cell::Cell::new(false),
            statements: HashMap::new(),
            timeout_ms: 0,
            password: self.password.clone(),
        })
    }

    fn is_broken(&self, conn: &mut PgConn) -> bool {
        conn.broken.get() || conn.client.is_closed()
    }
}

impl PgConn {
    /// Runs one client call on this connection's runtime, cut at `budget`.
    fn run<T>(
        &self,
        budget: Duration,
        call: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, DbError> {
        // The timer must be made inside the runtime.
        match self
            .runtime
            .block_on(async { tokio::time::timeout(budget, call).await })
        {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(pg_error(&err, self.password.as_deref())),
            Err(_) => {
                self.broken.set(true);
                Err(DbError::Timeout("waiting for PostgreSQL".into()))
            }
        }
    }

    /// Sets `statement_timeout` to (a little under) `budget`. Rounded down so that the
    /// statements of one request rarely need a new `SET`.
    fn limit(&mut self, budget: Duration) -> Result<(), DbError> {
        let ms = budget.as_millis() as u64;
        let ms = match ms {
            0 => return Err(DbError::Timeout("before the statement started".into())),
            2000.. => ms / 1000 * 1000,
            100.. => ms / 100 * 100,
            _ => ms,
        };
        if ms != self.timeout_ms {
            let set = format!("SET statement_timeout = {ms}");
            self.run(budget, self.client.batch_execute(&set))?;
            self.timeout_ms = ms;
        }
        Ok(())
    }

    fn prepare(&mut self, sql: &str, budget: Duration) -> Result<Statement, DbError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.run(budget, self.client.prepare(sql))?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Converts every parameter to its type in the prepared statement.
    fn bind_all(statement: &Statement, params: &[Dynamic]) -> Result<Vec<Bound>, DbError> {
        let types = statement.params();
        if types.len() != params.len() {
            return Err(DbError::Sql(format!(
                "the statement has {} parameter(s) ($1, $2, ...) but {} value(s) were given",
                types.len(),
                params.len()
            )));
        }
        params
            .iter()
            .zip(types)
            .enumerate()
            .map(|(i, (value, ty))| {
                to_param(value, ty).map_err(|message| DbError::Param {
                    index: i + 1,
                    message,
                })
            })
            .collect()
    }
}

impl Connection for PgConn {
    fn query_bounded(
        &mut self,
        sql: &str,
        params: &[Dynamic],
        budget: Duration,
        max_bytes: usize,
    ) -> Result<Vec<Map>, DbError> {
        self.limit(budget)?;
        let sql = &numbered_placeholders(sql, params.len());
        let statement = self.prepare(sql, budget)?;
        let bound = PgConn::bind_all(&statement, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| b as _).collect();
        let rows = self.run(budget, self.client.query(&statement, &refs))?;
        let columns = statement.columns();
        let mut out = Vec::with_capacity(rows.len());
        let mut counted = RowBytes::new(max_bytes);
        for row in &rows {
            let mut map = Map::new();
            for (i, column) in columns.iter().enumerate() {
                let value = read(row, i, column.type_()).map_err(|message| DbError::Column {
                    column: column.name().to_string(),
                    message,
                })?;
                map.insert(column.name().into(), value);
            }
            counted.add(&map)?;
            out.push(map);
        }
        Ok(out)
    }

    fn execute(
        &mut self,
        sql: &str,
        params: &[Dynamic],
        budget: Duration,
    ) -> Result<Executed, DbError> {
        self.limit(budget)?;
        let sql = &numbered_placeholders(sql, params.len());
        let statement = self.prepare(sql, budget)?;
        let bound = PgConn::bind_all(&statement, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| b as _).collect();
        let rows = self.run(budget, self.client.execute(&statement, &refs))?;
        Ok(Executed {
            rows_affected: rows,
            last_insert_id: None,
        })
    }

    fn batch(&mut self, sql: &str, budget: Duration) -> Result<(), DbError> {
        // In a failed transaction only ROLLBACK is accepted (a SET would fail too); the
        // client-side cut still bounds it.
        if !sql.starts_with("ROLLBACK") {
            self.limit(budget)?;
        }
        self.run(budget, self.client.batch_execute(sql))
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
}

/// The type to convert to: a domain's base type, an enum as text.
fn base(ty: &Type) -> &Type {
    match ty.kind() {
        Kind::Domain(inner) => base(inner),
        Kind::Enum(_) => &Type::TEXT,
        _ if ty.name() == "citext" => &Type::TEXT,
        _ => ty,
    }
}

fn is_text(ty: &Type) -> bool {
    [
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
        Type::UNKNOWN,
    ]
    .contains(ty)
}

/// A parameter converted to the type PostgreSQL expects for it.
#[derive(Debug)]
enum Bound {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    Oid(u32),
    F32(f32),
    F64(f64),
    Numeric(String),
    Text(String),
    Bytes(Vec<u8>),
    Uuid(uuid::Uuid),
    Json(serde_json::Value),
    Timestamptz(OffsetDateTime),
    Timestamp(PrimitiveDateTime),
    Date(Date),
    Time(Time),
}

impl ToSql for Bound {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Bound::Null => Ok(IsNull::Yes),
            Bound::Bool(v) => v.to_sql(ty, out),
            Bound::I16(v) => v.to_sql(ty, out),
            Bound::I32(v) => v.to_sql(ty, out),
            Bound::I64(v) => v.to_sql(ty, out),
            Bound::Oid(v) => v.to_sql(ty, out),
            Bound::F32(v) => v.to_sql(ty, out),
            Bound::F64(v) => v.to_sql(ty, out),
            Bound::Numeric(v) => {
                super::numeric::encode(v, out)?;
                Ok(IsNull::No)
            }
            Bound::Text(v) => {
                out.extend_from_slice(v.as_bytes());
                Ok(IsNull::No)
            }
            Bound::Bytes(v) => v.to_sql(ty, out),
            Bound::Uuid(v) => v.to_sql(ty, out),
            Bound::Json(v) => v.to_sql(ty, out),
            Bound::Timestamptz(v) => v.to_sql(ty, out),
            Bound::Timestamp(v) => v.to_sql(ty, out),
            Bound::Date(v) => v.to_sql(ty, out),
            Bound::Time(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // `to_param` already chose the variant for the parameter's type.
        true
    }

    to_sql_checked!();
}

/// Converts a script value to what a parameter of type `ty` takes; numbers and strings
/// convert where the meaning is plain (`"42"` for an integer, an ISO string for a date).
fn to_param(value: &Dynamic, ty: &Type) -> Result<Bound, String> {
    if value.is_unit() {
        return Ok(Bound::Null);
    }
    let ty = base(ty);
    let wrong = || {
        format!(
            "cannot bind a {} to a parameter of type {}",
            value.type_name(),
            ty.name()
        )
    };
    let text = value.is_string().then(|| value.to_string());
    let int = value
        .as_int()
        .ok()
        .or_else(|| text.as_deref().and_then(|t| t.trim().parse::<i64>().ok()));
    let float = value
        .as_float()
        .ok()
        .or_else(|| int.map(|n| n as f64))
        .or_else(|| text.as_deref().and_then(|t| t.trim().parse::<f64>().ok()));
    Ok(match *ty {
        Type::BOOL => Bound::Bool(match (value.as_bool(), text.as_deref()) {
            (Ok(b), _) => b,
            (_, Some("true")) => true,
            (_, Some("false")) => false,
            _ => return Err(wrong()),
        }),
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => int_param(ty, int.ok_or_else(wrong)?)?,
        Type::FLOAT4 => Bound::F32(float.ok_or_else(wrong)? as f32),
        Type::FLOAT8 => Bound::F64(float.ok_or_else(wrong)?),
        Type::NUMERIC => Bound::Numeric(match (int, value.as_float(), &text) {
            (_, _, Some(t)) => t.trim().to_string(),
            (Some(n), _, _) => n.to_string(),
            (_, Ok(x), _) if x.is_finite() => x.to_string(),
            _ => return Err(wrong()),
        }),
        Type::BYTEA => match (value.is_blob(), text) {
            (true, _) => Bound::Bytes(value.clone().into_blob().unwrap_or_default()),
            (_, Some(t)) => Bound::Bytes(t.into_bytes()),
            _ => return Err(wrong()),
        },
        Type::UUID => {
            let t = text.ok_or_else(wrong)?;
            Bound::Uuid(
                uuid::Uuid::parse_str(t.trim()).map_err(|_| format!("'{t}' is not a UUID"))?,
            )
        }
        Type::JSON | Type::JSONB => Bound::Json(match text {
            // A string is JSON text, as with '...'::jsonb.
            Some(t) => serde_json::from_str(&t).map_err(|err| format!("not valid JSON: {err}"))?,
            None => serde_json::to_value(value).map_err(|err| format!("not JSON: {err}"))?,
        }),
        Type::TIMESTAMPTZ | Type::TIMESTAMP | Type::DATE | Type::TIME => {
            time_param(ty, &text.ok_or_else(wrong)?)?
        }
        _ if is_text(ty) => match text {
            Some(t) => Bound::Text(t),
            None if value.is_map() || value.is_array() => {
                Bound::Text(serde_json::to_string(value).map_err(|err| err.to_string())?)
            }
            None if value.is_blob() => return Err(wrong()),
            None => Bound::Text(value.to_string()),
        },
        _ => {
            return Err(format!(
                "{}; cast it in SQL, e.g. $1::text::{}",
                wrong(),
                ty.name()
            ))
        }
    })
}

/// An integer parameter of an integer type, checked against the type's range.
fn int_param(ty: &Type, n: i64) -> Result<Bound, String> {
    let out_of_range = || format!("{n} is out of range for type {}", ty.name());
    Ok(match *ty {
        Type::INT2 => Bound::I16(i16::try_from(n).map_err(|_| out_of_range())?),
        Type::INT4 => Bound::I32(i32::try_from(n).map_err(|_| out_of_range())?),
        Type::OID => Bound::Oid(u32::try_from(n).map_err(|_| out_of_range())?),
        _ => Bound::I64(n),
    })
}

/// A date or time parameter from ISO 8601 text.
fn time_param(ty: &Type, t: &str) -> Result<Bound, String> {
    Ok(match *ty {
        Type::TIMESTAMPTZ => {
            let (date, time, offset) = iso::parse(t)?;
            let offset = offset.unwrap_or(UtcOffset::UTC);
            Bound::Timestamptz(
                PrimitiveDateTime::new(date, time.unwrap_or(Time::MIDNIGHT)).assume_offset(offset),
            )
        }
        Type::TIMESTAMP => {
            let (date, time, offset) = iso::parse(t)?;
            let local = PrimitiveDateTime::new(date, time.unwrap_or(Time::MIDNIGHT));
            Bound::Timestamp(match offset {
                Some(offset) => {
                    let utc = local.assume_offset(offset).to_offset(UtcOffset::UTC);
                    PrimitiveDateTime::new(utc.date(), utc.time())
                }
                None => local,
            })
        }
        Type::DATE => Bound::Date(iso::parse(t)?.0),
        Type::TIME => Bound::Time(
            iso::parse_time(t.trim()).ok_or_else(|| format!("'{t}' is not a time (HH:MM:SS)"))?,
        ),
        _ => return Err(format!("{} is not a date or time type", ty.name())),
    })
}

/// Any value, as its raw bytes (enums, citext and other text-like types).
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Raw, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A `numeric` as an `i64` when whole and in range, else an `f64`.
struct Numeric(Dynamic);

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> Result<Numeric, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Numeric(super::numeric::decode(raw)?))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

/// Column `i` of `row`, by its type (docs/batteries.md, the type mapping).
fn read(row: &tokio_postgres::Row, i: usize, ty: &Type) -> Result<Dynamic, String> {
    fn get<'a, T: FromSql<'a>>(
        row: &'a tokio_postgres::Row,
        i: usize,
    ) -> Result<Option<T>, String> {
        row.try_get::<_, Option<T>>(i)
            .map_err(|err| match err.source() {
                Some(source) => source.to_string(),
                None => err.to_string(),
            })
    }
    let ty = base(ty);
    let value = match *ty {
        Type::BOOL => get::<bool>(row, i)?.map(Dynamic::from_bool),
        Type::INT2 => get::<i16>(row, i)?.map(|n| Dynamic::from_int(n.into())),
        Type::INT4 => get::<i32>(row, i)?.map(|n| Dynamic::from_int(n.into())),
        Type::INT8 => get::<i64>(row, i)?.map(Dynamic::from_int),
        Type::OID => get::<u32>(row, i)?.map(|n| Dynamic::from_int(n.into())),
        Type::FLOAT4 => get::<f32>(row, i)?.map(|x| Dynamic::from_float(x.into())),
        Type::FLOAT8 => get::<f64>(row, i)?.map(Dynamic::from_float),
        Type::NUMERIC => get::<Numeric>(row, i)?.map(|n| n.0),
        Type::BYTEA => get::<Vec<u8>>(row, i)?.map(Dynamic::from_blob),
        Type::UUID => get::<uuid::Uuid>(row, i)?.map(|u| u.to_string().into()),
        Type::JSON | Type::JSONB => match get::<serde_json::Value>(row, i)? {
            Some(json) => {
                Some(serde_json::from_value::<Dynamic>(json).map_err(|err| err.to_string())?)
            }
            None => None,
        },
        Type::TIMESTAMPTZ => get::<OffsetDateTime>(row, i)?.map(|t| iso::timestamptz(t).into()),
        Type::TIMESTAMP => get::<PrimitiveDateTime>(row, i)?.map(|t| iso::timestamp(t).into()),
        Type::DATE => get::<Date>(row, i)?.map(|d| iso::date(d).into()),
        Type::TIME => get::<Time>(row, i)?.map(|t| iso::time(t).into()),
        _ if is_text(ty) || *ty == Type::TEXT => {
            get::<Raw>(row, i)?.map(|raw| String::from_utf8_lossy(&raw.0).into_owned().into())
        }
        _ => {
            return Err(format!(
                "has type {}, which db:: cannot read; cast it to text in SQL",
                ty.name()
            ))
        }
    };
    Ok(value.unwrap_or(Dynamic::UNIT))
}
