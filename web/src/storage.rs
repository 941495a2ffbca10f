//! The session kept in the browser's IndexedDB (database `cytolens`, one key-value store), so
//! a reload or a crash loses nothing: the session JSON, each image's original bytes and each
//! cell's crop.

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DomException, IdbDatabase, IdbRequest, IdbTransaction, IdbTransactionMode};

const DB: &str = "cytolens";
const STORE: &str = "kv";

fn err(e: JsValue) -> String {
    format!("IndexedDB: {}", crate::bridge::js_error_text(&e))
}

/// What went wrong, as the browser names it ("QuotaExceededError: ...").
fn describe(e: Option<DomException>) -> String {
    e.map(|e| crate::bridge::js_error_text(&e))
        .unwrap_or_else(|| "the browser aborted the write".into())
}

/// Resolve when an IndexedDB request succeeds, with its result.
async fn done(req: &IdbRequest) -> Result<JsValue, String> {
    let r = req.clone();
    let promise = Promise::new(&mut |resolve, reject| {
        let r2 = r.clone();
        let ok = Closure::once_into_js(move || {
            let _ = resolve.call1(&JsValue::NULL, &r2.result().unwrap_or(JsValue::UNDEFINED));
        });
        let r3 = r.clone();
        let fail = Closure::once_into_js(move || {
            let why = describe(r3.error().ok().flatten());
            let _ = reject.call1(&JsValue::NULL, &JsValue::from_str(&why));
        });
        r.set_onsuccess(Some(ok.unchecked_ref()));
        r.set_onerror(Some(fail.unchecked_ref()));
    });
    JsFuture::from(promise).await.map_err(err)
}

/// A promise that resolves when `tx` commits and rejects when it aborts. A write's request
/// succeeds before its transaction commits, and a full disk or the origin's quota
/// (`QuotaExceededError`) aborts the transaction only then: a write is kept once this
/// resolves, not before. Made before the write is awaited, so the outcome is not missed.
fn committed(tx: &IdbTransaction) -> Promise {
    let t = tx.clone();
    Promise::new(&mut |resolve, reject| {
        let ok = Closure::once_into_js(move || {
            let _ = resolve.call0(&JsValue::NULL);
        });
        let t2 = t.clone();
        let fail = Closure::once_into_js(move || {
            let why = describe(t2.error());
            let _ = reject.call1(&JsValue::NULL, &JsValue::from_str(&why));
        });
        t.set_oncomplete(Some(ok.unchecked_ref()));
        t.set_onabort(Some(fail.unchecked_ref()));
    })
}

/// Wait for a write's request and then for its transaction to commit ([`committed`]).
async fn written(req: &IdbRequest, commit: Promise) -> Result<(), String> {
    let request = done(req).await;
    let commit = JsFuture::from(commit).await.map_err(err);
    request.and(commit).map(|_| ())
}

/// Open (or create) the database.
pub async fn open() -> Result<IdbDatabase, String> {
    let factory = web_sys::window()
        .ok_or("no window")?
        .indexed_db()
        .map_err(err)?
        .ok_or("IndexedDB unavailable")?;
    let req = factory.open_with_u32(DB, 1).map_err(err)?;
    let upgrade = Closure::<dyn FnMut(web_sys::IdbVersionChangeEvent)>::new(
        move |ev: web_sys::IdbVersionChangeEvent| {
            if let Some(db) = ev
                .target()
                .and_then(|t| t.dyn_into::<IdbRequest>().ok())
                .and_then(|r| r.result().ok())
                .and_then(|r| r.dyn_into::<IdbDatabase>().ok())
            {
                // Version 1 is the first schema: the upgrade runs only on a fresh database.
                let _ = db.create_object_store(STORE);
            }
        },
    );
    req.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
    upgrade.forget();
    done(&req).await?.dyn_into::<IdbDatabase>().map_err(err)
}

/// Store a value under `key`.
pub async fn put(db: &IdbDatabase, key: &str, value: &JsValue) -> Result<(), String> {
    let tx = db
        .transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite)
        .map_err(err)?;
    let commit = committed(&tx);
    let req = tx
        .object_store(STORE)
        .map_err(err)?
        .put_with_key(value, &JsValue::from_str(key))
        .map_err(err)?;
    written(&req, commit).await
}

/// Store bytes under `key`.
pub async fn put_bytes(db: &IdbDatabase, key: &str, bytes: &[u8]) -> Result<(), String> {
    put(db, key, &Uint8Array::from(bytes).into()).await
}

/// Read the value under `key` (`None` when absent).
pub async fn get(db: &IdbDatabase, key: &str) -> Result<Option<JsValue>, String> {
    let tx = db.transaction_with_str(STORE).map_err(err)?;
    let req = tx
        .object_store(STORE)
        .map_err(err)?
        .get(&JsValue::from_str(key))
        .map_err(err)?;
    let v = done(&req).await?;
    Ok((!v.is_undefined() && !v.is_null()).then_some(v))
}

/// Read bytes under `key`; a value of another type is an error.
pub async fn get_bytes(db: &IdbDatabase, key: &str) -> Result<Option<Vec<u8>>, String> {
    match get(db, key).await? {
        None => Ok(None),
        Some(v) => v
            .dyn_into::<Uint8Array>()
            .map(|a| Some(a.to_vec()))
            .map_err(|_| format!("{key}: stored value is not bytes")),
    }
}

/// Delete everything.
pub async fn clear(db: &IdbDatabase) -> Result<(), String> {
    let tx = db
        .transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite)
        .map_err(err)?;
    let commit = committed(&tx);
    let req = tx.object_store(STORE).map_err(err)?.clear().map_err(err)?;
    written(&req, commit).await
}
