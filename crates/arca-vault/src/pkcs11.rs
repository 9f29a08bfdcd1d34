//! The PKCS#11 seal: a non-extractable AES-256 key inside an HSM token
//! encrypts the vault's secrets at rest (AES-GCM computed by the token).
//! The vault finds the token and the key by label; the key never leaves
//! the HSM, so a copy of the vault's disk is useless without it.

use std::path::Path;
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

use crate::secrets::SealError;

/// Bytes of AES-GCM IV in front of a sealed blob.
const IV_LEN: usize = 12;
const TAG_BITS: u64 = 128;

pub struct Pkcs11Seal {
    // Field order: the session must close before the library is finalized.
    session: Mutex<Session>,
    key: ObjectHandle,
    _ctx: Pkcs11,
}

fn hsm(what: &str) -> impl FnOnce(CkError) -> SealError + '_ {
    move |e| SealError::Hsm(format!("{what}: {e}"))
}

impl Pkcs11Seal {
    /// Opens the token labelled `token_label` with `pin` and finds the AES
    /// key labelled `key_label`; with `create`, generates it if missing.
    pub fn open(
        module: &Path,
        token_label: &str,
        pin: &str,
        key_label: &str,
        create: bool,
    ) -> Result<Self, SealError> {
        let ctx = Pkcs11::new(module).map_err(|e| {
            SealError::Hsm(format!(
                "cannot load the PKCS#11 module {}: {e}",
                module.display()
            ))
        })?;
        ctx.initialize(CInitializeArgs::OsThreads)
            .map_err(hsm("initialize"))?;
        let mut found = None;
        for slot in ctx.get_slots_with_token().map_err(hsm("list slots"))? {
            let info = ctx.get_token_info(slot).map_err(hsm("token info"))?;
            if info.label().trim_end() == token_label {
                found = Some(slot);
                break;
            }
        }
        let slot = found.ok_or_else(|| {
            SealError::Hsm(format!(
                "no token labelled {token_label:?} in {}",
                module.display()
            ))
        })?;
        let session = ctx.open_rw_session(slot).map_err(hsm("open session"))?;
        session
            .login(UserType::User, Some(&AuthPin::new(pin.into())))
            .map_err(|e| match e {
                CkError::Pkcs11(RvError::PinIncorrect, _) => SealError::Hsm(format!(
                    "the HSM rejected the PIN for token {token_label:?}: check the configured PIN"
                )),
                CkError::Pkcs11(RvError::PinLocked, _) => SealError::Hsm(format!(
                    "the PIN of token {token_label:?} is locked after too many wrong PINs"
                )),
                e => SealError::Hsm(format!("login: {e}")),
            })?;
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Label(key_label.as_bytes().to_vec()),
        ];
        let keys = session.find_objects(&template).map_err(hsm("find key"))?;
        let key = match keys.first() {
            Some(k) => *k,
            None if create => session
                .generate_key(
                    &Mechanism::AesKeyGen,
                    &[
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(KeyType::AES),
                        Attribute::ValueLen(32.into()),
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Encrypt(true),
                        Attribute::Decrypt(true),
                        Attribute::Label(key_label.as_bytes().to_vec()),
                    ],
                )
                .map_err(hsm("generate the seal key"))?,
            None => {
                return Err(SealError::Hsm(format!(
                    "no AES key labelled {key_label:?} on token {token_label:?}: \
                     was this vault initialised with this HSM?"
                )));
            }
        };
        Ok(Self {
            session: Mutex::new(session),
            key,
            _ctx: ctx,
        })
    }

    /// `iv || AES-256-GCM(key in HSM, iv, aad, plain)`.
    pub fn encrypt(&self, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut iv = [0u8; IV_LEN];
        arca_crypto::fill_random(&mut iv);
        let mut iv_param = iv;
        let params =
            GcmParams::new(&mut iv_param, aad, TAG_BITS.into()).map_err(hsm("GCM parameters"))?;
        let session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let ct = session
            .encrypt(&Mechanism::AesGcm(params), self.key, plain)
            .map_err(hsm("encrypt"))?;
        let mut out = iv.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn decrypt(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < IV_LEN + 16 {
            return Err(SealError::Unseal);
        }
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&sealed[..IV_LEN]);
        let params =
            GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(hsm("GCM parameters"))?;
        let session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        session
            .decrypt(&Mechanism::AesGcm(params), self.key, &sealed[IV_LEN..])
            .map_err(|_| SealError::Unseal)
    }
}
