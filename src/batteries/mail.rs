//! `mail::send(#{ to, from, subject, text, html })` through the SMTP server of `SMTP_URL`:
//! `smtp://user:pass@host:port` (STARTTLS when the server offers it; `?tls=required` to
//! insist) or `smtps://...` (TLS from the first byte). Under `rhapi test` the app's
//! [`Outbox`] takes the mail instead, once it is checked as a message.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{Message, SmtpTransport, Transport};
use rhai::{Array, Dynamic, Map, Module, NativeCallContext};

use super::{at, budget, budget_spent, script_error, timed_out, ScriptResult};
use crate::app_context::AppContext;
use crate::env::EnvVars;

/// Longest an SMTP exchange may take, whatever the budget left.
const MAX_SMTP_TIME: Duration = Duration::from_secs(30);

/// The `mail` module, sending through `SMTP_URL` of `env`, or into the outbox of `app`
/// when it has one.
pub fn module(env: &EnvVars, app: &Arc<AppContext>) -> Module {
    let smtp_url = env.get("SMTP_URL").map(str::to_string);
    let app = Arc::clone(app);
    let mut module = Module::new();
    module.set_native_fn("send", move |ctx: NativeCallContext, mail: Map| {
        let result = match &app.outbox {
            Some(outbox) => build(&mail).map(|_| outbox.push(mail)),
            None => send(smtp_url.as_deref(), &mail),
        };
        at(&ctx, result)
    });
    module
}

/// What `mail::send` was given under `rhapi test`, in order (`sent_mail()`), emptied
/// before each test.
#[derive(Default)]
pub struct Outbox(Mutex<Vec<Map>>);

impl Outbox {
    fn push(&self, mail: Map) {
        self.lock().push(mail);
    }

    /// Copies of the mail sent so far.
    pub fn sent(&self) -> Array {
        self.lock().iter().cloned().map(Dynamic::from_map).collect()
    }

    /// Empties the outbox.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Map>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn fail(message: impl std::fmt::Display) -> Box<rhai::EvalAltResult> {
    script_error(format!("mail::send: {message}"))
}

fn send(smtp_url: Option<&str>, mail: &Map) -> ScriptResult<()> {
    let Some(smtp_url) = smtp_url.filter(|u| !u.is_empty()) else {
        return Err(fail(
            "SMTP_URL is not set (e.g. SMTP_URL=smtp://user:password@smtp.example.com:587)",
        ));
    };
    let message = build(mail)?;
    let budget = budget()?;
    let timeout = budget.min(MAX_SMTP_TIME);
    let transport = transport(smtp_url)?.timeout(Some(timeout)).build();
    // The SMTP client is synchronous: it runs on a blocking thread while the run waits.
    let sent = crate::executor::blocking_spawned(move || {
        transport
            .send(&message)
            .map(|_| ())
            .map_err(|err| (err.is_timeout(), err.to_string()))
    });
    match sent {
        crate::executor::Waited::TimedOut => Err(timed_out()),
        crate::executor::Waited::Done(Ok(())) => Ok(()),
        crate::executor::Waited::Done(Err((true, _))) if budget_spent() => Err(timed_out()),
        crate::executor::Waited::Done(Err((_, message))) => {
            let password = password_of(smtp_url);
            Err(fail(crate::env::scrub(&message, password.as_deref())))
        }
    }
}

/// The transport for `smtp_url`; plain `smtp://` upgrades with STARTTLS when offered.
fn transport(smtp_url: &str) -> ScriptResult<lettre::transport::smtp::SmtpTransportBuilder> {
    let url = if smtp_url.starts_with("smtp://") && !smtp_url.contains("tls=") {
        let sep = if smtp_url.contains('?') { '&' } else { '?' };
        format!("{smtp_url}{sep}tls=opportunistic")
    } else {
        smtp_url.to_string()
    };
    if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
        return Err(fail("SMTP_URL must start with smtp:// or smtps://"));
    }
    // Its error may quote the URL, which holds the password: say only what is wrong.
    SmtpTransport::from_url(&url)
        .map_err(|_| fail("SMTP_URL is not a valid smtp:// or smtps:// URL"))
}

/// The URL's password, percent-decoded, to keep it out of messages.
fn password_of(url: &str) -> Option<String> {
    let authority = url.split_once("://")?.1.split('/').next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    let decoded = percent_encoding::percent_decode_str(password)
        .decode_utf8()
        .ok()?
        .into_owned();
    (!decoded.is_empty()).then_some(decoded)
}

/// The message: `from`, `to` (a string or an array), optional `cc`, `bcc`, `reply_to`,
/// `subject`, and `text` and/or `html` (both: multipart/alternative).
fn build(mail: &Map) -> ScriptResult<Message> {
    let text_field = |key: &str| -> ScriptResult<Option<String>> {
        match mail.get(key) {
            None => Ok(None),
            Some(v) if v.is_unit() => Ok(None),
            Some(v) if v.is_string() => Ok(Some(v.to_string())),
            Some(_) => Err(fail(format!("{key} must be a string"))),
        }
    };
    let mailbox = |text: &str| -> ScriptResult<Mailbox> {
        text.parse::<Mailbox>()
            .map_err(|_| fail(format!("'{text}' is not an email address")))
    };
    let addresses = |key: &str| -> ScriptResult<Vec<Mailbox>> {
        match mail.get(key) {
            None => Ok(Vec::new()),
            Some(v) if v.is_unit() => Ok(Vec::new()),
            Some(v) if v.is_string() => Ok(vec![mailbox(&v.to_string())?]),
            Some(v) if v.is_array() => v
                .read_lock::<Array>()
                .map(|list| list.iter().map(|a| mailbox(&a.to_string())).collect())
                .unwrap_or_else(|| Ok(Vec::new())),
            Some(_) => Err(fail(format!(
                "{key} must be a string or an array of strings"
            ))),
        }
    };

    let from = text_field("from")?.ok_or_else(|| fail("from is required"))?;
    let to = addresses("to")?;
    if to.is_empty() {
        return Err(fail("to is required (a string or an array)"));
    }
    let mut builder = Message::builder()
        .from(mailbox(&from)?)
        .subject(text_field("subject")?.unwrap_or_default());
    for address in to {
        builder = builder.to(address);
    }
    for address in addresses("cc")? {
        builder = builder.cc(address);
    }
    for address in addresses("bcc")? {
        builder = builder.bcc(address);
    }
    if let Some(reply_to) = text_field("reply_to")? {
        builder = builder.reply_to(mailbox(&reply_to)?);
    }
    let message = match (text_field("text")?, text_field("html")?) {
        (Some(text), Some(html)) => {
            builder.multipart(MultiPart::alternative_plain_html(text, html))
        }
        (Some(text), None) => builder.singlepart(SinglePart::plain(text)),
        (None, Some(html)) => builder.singlepart(SinglePart::html(html)),
        (None, None) => return Err(fail("text or html is required")),
    };
    message.map_err(|err| fail(format!("cannot build the message: {err}")))
}
