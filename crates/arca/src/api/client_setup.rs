//! Client setup details (Harness view): the commands a user pastes to use a registry. Each format
//! writes its own steps (`formats::setup`); this view adds the token step, drops write steps for
//! callers who cannot write and registries that take no writes, numbers the sections and frames them as the Harness UI expects
//! (sections of type INLINE, steps of type Static or GenerateToken).

use serde_json::{Value, json};

use crate::auth::{Need, Principal};
use crate::formats::setup::{SetupContext, step};
use crate::model::{Registry, RegistryKind};
use crate::state::AppState;

pub fn details(
    state: &AppState,
    reg: &Registry,
    principal: &Principal,
    artifact: Option<&str>,
    version: Option<&str>,
) -> Value {
    let anonymous = principal.is_anonymous();
    // No write steps for those who cannot write here, nor where nothing can be written (a
    // group without a deployment member takes no uploads).
    let read_only = anonymous
        || !principal.can(reg, Need::Write)
        || matches!(
            reg.kind,
            RegistryKind::Proxy | RegistryKind::Cache | RegistryKind::Trash
        )
        || (reg.kind == RegistryKind::Group && reg.deployment_registry_id.is_none());
    let ctx = SetupContext::new(
        &state.config.base_url,
        reg,
        principal.user_name(),
        artifact,
        version,
    );
    let setup = crate::formats::for_type(reg.package_type).client_setup(&ctx);
    let (title, mut sections) = (setup.title, setup.sections);
    if read_only {
        // Anonymous callers and read-only registries get no push/upload/publish steps.
        sections.retain(|s| {
            let h = s["header"].as_str().unwrap_or("");
            !(h.starts_with("Upload")
                || h.starts_with("Push")
                || h.starts_with("Publish")
                || h.starts_with("Deploy"))
        });
    }
    if !anonymous {
        // Harness's GenerateToken step has no commands; the static step after it makes the
        // same token over Arca's API, for any client with curl.
        let create = format!(
            "curl -sS --fail-with-body -u {}:<PASSWORD> -H 'Content-Type: application/json' -d '{{\"name\": \"{}\"}}' {}{}",
            ctx.user,
            reg.identifier,
            ctx.base,
            crate::api::tokens::TOKENS_PATH
        );
        sections.insert(
            0,
            json!({"type": "INLINE", "header": "Generate Identity Token",
                   "secHeader": "An identity token will serve as the password for uploading and downloading artifacts.",
                   "steps": [
                       {"type": "GenerateToken", "header": "Generate an identity token"},
                       step(
                           "Or create one with Arca's API: <PASSWORD> is your password or an existing token; the answer's \"token\" field is the <TOKEN> of the steps below (shown only once)",
                           &[("", create)],
                       ),
                   ]}),
        );
    }
    for (i, s) in sections.iter_mut().enumerate() {
        if let Some(h) = s["header"].as_str() {
            s["header"] = json!(format!("{}. {h}", i + 1));
        }
    }
    json!({
        "mainHeader": title,
        "secHeader": format!("Follow these instructions to install/use {} artifacts or compatible packages.", reg.package_type.harness()),
        "sections": sections,
    })
}
