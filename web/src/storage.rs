//! The session kept in the browser's IndexedDB (database `cytolens`, one key-value store), so
//! a reload or a crash loses nothing: the session JSON, each image's original bytes and each
//! cell's crop.

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbRequest, IdbTransactionMode};

const DB: &str = "cytolens";
const STORE: &str = "kv";

fn err(e: JsValue) -> String {
    format!("IndexedDB: {e:?}")
}

/// Resolve when an IndexedDB request succeeds, with its result.
async fn done(req: &IdbRequest) -> Result<JsValue, String> {
    let r = req.clone();
    let promise = Promise::new(&mut |resolve, reject| {
        let r2 = r.clone();
        let ok = Closure::once_into_js(move || {
            let _ = resolve.call1(&JsValue::NULL, &r2.result().unwrap_or(JsValue::UNDEFINED));
        });
        let fail = Closure::once_into_js(move || {
            let _ = reject.call1(&JsValue::NULL, &JsValue::from_str("request failed"));
        });
        r.set_onsuccess(Some(ok.unchecked_ref()));
        r.set_onerror(Some(fail.unchecked_ref()));
    });
    JsFuture::from(promise).await.map_err(err)
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
    let req = tx
        .object_store(STORE)
        .map_err(err)?
        .put_with_key(value, &JsValue::from_str(key))
        .map_err(err)?;
    done(&req).await.map(|_| ())
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
    let req = tx.object_store(STORE).map_err(err)?.clear().map_err(err)?;
    done(&req).await.map(|_| ())
}
