//! Sign-off of a smear: who (a name typed by the user, the session's reviewer until then) and
//! when. Possible once the analysis has
//! classified every white cell it found and no cell awaits review; the smear's reviews are final
//! then ([`Session::sign_off`]).

use super::refusal;
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
    // The name typed here; until the user types one, the session's reviewer's.
    let typed = RwSignal::new(None::<String>);
    let name = move || {
        typed
            .get()
            .unwrap_or_else(|| session.with(|s| s.reviewer.clone().unwrap_or_default()))
    };
    let (refused, set_refused) = signal(None::<String>);
    let signed =
        Memo::new(move |_| session.with(|s| s.image(id).and_then(|i| i.signed_off.clone())));
    let blocker = Memo::new(move |_| {
        session.with(|s| {
            s.image(id)
                .map_or(Some("no such image".into()), |i| i.sign_off_blocker())
        })
    });
    let sign = move |_| {
        let when = crate::bridge::now_iso();
        let who = untrack(name);
        set_refused.set(refusal(session, |s| s.sign_off(id, &who, &when)));
    };
    view! {
        <div class="signoff" data-testid="sign-off">
            {move || match signed.get() {
                Some((who, when)) => view! {
                    <span data-testid="signed">{format!("Signed off by {who} at {when}; its reviews are final (re-analysing the smear clears the sign-off)")}</span>
                }.into_any(),
                None => view! {
                    <input type="text" placeholder="Reviewer name" data-testid="signoff-name"
                        prop:value=name on:input=move |ev| typed.set(Some(event_target_value(&ev))) />
                    <button data-testid="signoff" disabled=move || name().trim().is_empty() || blocker.get().is_some()
                        on:click=sign>"Sign off smear"</button>
                    {move || blocker.get().or_else(|| refused.get()).map(|why| view! {
                        <span class="hint" data-testid="signoff-blocked">{format!("Not yet: {why}.")}</span>
                    })}
                }.into_any(),
            }}
        </div>
    }
}
