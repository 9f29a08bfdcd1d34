//! Object storage behind `object_store`, with a blocking API.
//!
//! Every write is a whole-object put: `object_store` writes local files to a
//! temporary name and renames them, and S3-like stores publish objects
//! atomically, so a reader never sees half an object.
//!
//! Local folders are written with fsync: the file is synced before the
//! rename and its folder after, so when a put returns the object is on disk.
//! Without it, a power cut after the snapshot was written could leave the
//! snapshot but lose the packs it points at, breaking the write-order
//! guarantee (docs/format.md §9).

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tokio::runtime::Runtime;

use crate::error::{Error, Result};

/// A repository's object store plus the runtime that drives it.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    rt: Arc<Runtime>,
    location: String,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({})", self.location)
    }
}

fn runtime() -> Result<Arc<Runtime>> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("arca-storage")
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| Error::Invalid(format!("cannot start the storage runtime: {e}")))
}

impl Storage {
    /// A folder on a local disk. With `create`, the folder is made if missing.
    pub fn local(path: &Path, create: bool) -> Result<Self> {
        let location = path.display().to_string();
        if create {
            std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        } else if !path.is_dir() {
            return Err(Error::NoRepository { location });
        }
        let store = LocalFileSystem::new_with_prefix(path)
            .map_err(|source| Error::Storage {
                object: location.clone(),
                source,
            })?
            .with_automatic_cleanup(true)
            .with_fsync(true);
        Ok(Self {
            store: Arc::new(store),
            rt: runtime()?,
            location,
        })
    }

    /// An in-memory store, for tests.
    pub fn memory() -> Self {
        Self {
            store: Arc::new(InMemory::new()),
            rt: runtime().expect("a tokio runtime starts on any supported platform"),
            location: "memory:".into(),
        }
    }

    /// Where this storage is, as shown to users.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn err(object: &str) -> impl FnOnce(object_store::Error) -> Error + '_ {
        move |source| Error::Storage {
            object: object.to_string(),
            source,
        }
    }

    /// The whole object, or `None` if it does not exist.
    pub fn get(&self, name: &str) -> Result<Option<Bytes>> {
        let path = StorePath::from(name);
        self.rt.block_on(async {
            match self.store.get(&path).await {
                Ok(r) => r.bytes().await.map(Some).map_err(Self::err(name)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(Self::err(name)(e)),
            }
        })
    }

    /// Byte ranges of one object; nearby ranges are fetched in one request.
    pub fn get_ranges(&self, name: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let path = StorePath::from(name);
        self.rt
            .block_on(self.store.get_ranges(&path, ranges))
            .map_err(Self::err(name))
    }

    /// Stores an object. With `create_only`, fails if it already exists.
    pub fn put(&self, name: &str, data: Bytes, create_only: bool) -> Result<()> {
        let path = StorePath::from(name);
        let opts = PutOptions {
            mode: if create_only {
                PutMode::Create
            } else {
                PutMode::Overwrite
            },
            ..Default::default()
        };
        match self.rt.block_on(
            self.store
                .put_opts(&path, PutPayload::from_bytes(data), opts),
        ) {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => Err(Error::AlreadyExists {
                location: format!("{}/{name}", self.location),
            }),
            Err(e) => Err(Self::err(name)(e)),
        }
    }

    /// All objects under `prefix`, as (name, size).
    pub fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let path = StorePath::from(prefix);
        self.rt.block_on(async {
            self.store
                .list(Some(&path))
                .map_ok(|m| (m.location.to_string(), m.size))
                .try_collect()
                .await
                .map_err(Self::err(prefix))
        })
    }

    /// Deletes one object (used by tests that damage repositories).
    pub fn delete(&self, name: &str) -> Result<()> {
        let path = StorePath::from(name);
        self.rt
            .block_on(self.store.delete(&path))
            .map_err(Self::err(name))
    }
}
