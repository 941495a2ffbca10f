//! Sign-off of a smear: who (a name typed by the user) and when.

use crate::session::Session;
use leptos::prelude::*;

/// Sign-off control of one image.
#[component]
pub fn SignOff(
    /// The session.
    session: RwSignal<Session>,
    /// Image id.
    id: u32,
) -> impl IntoView {
    let (name, set_name) = signal(String::new());
    let signed =
        Memo::new(move |_| session.with(|s| s.image(id).and_then(|i| i.signed_off.clone())));
    view! {
        <div class="signoff" data-testid="sign-off">
            {move || match signed.get() {
                Some((who, when)) => view! { <span data-testid="signed">{format!("Signed off by {who} at {when}")}</span> }.into_any(),
                None => view! {
                    <input type="text" placeholder="Reviewer name" data-testid="signoff-name"
                        prop:value=move || name.get() on:input=move |ev| set_name.set(event_target_value(&ev)) />
                    <button data-testid="signoff" disabled=move || name.get().trim().is_empty() on:click=move |_| {
                        let when = String::from(js_sys::Date::new_0().to_iso_string());
                        let who = name.get_untracked().trim().to_string();
                        session.update(|s| {
                            if let Some(i) = s.image_mut(id) {
                                i.signed_off = Some((who, when));
                            }
                        });
                    }>"Sign off smear"</button>
                }.into_any(),
            }}
        </div>
    }
}
