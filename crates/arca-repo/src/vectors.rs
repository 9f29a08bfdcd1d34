//! Format test vectors: the exact bytes this version writes for fixed
//! inputs. They are also printed in `docs/format.md`. If one of these fails
//! after a dependency update, the on-disk format changed: do not "fix" the
//! constant, find the cause.

use arca_crypto::{BackupKey, IdKey, ObjectKey, Purpose, Salt};

use crate::chunker::{Boundaries, Chunker, ChunkerParams};
use crate::format::{self, MetaKind, PREFIX_LEN};
use crate::id::{BlobId, BlobType};
use crate::pack::PackWriter;

/// Key bytes 00 01 02 ... 1f.
fn key() -> BackupKey {
    BackupKey::from_bytes(core::array::from_fn(|i| i as u8))
}

fn sub_hex(p: Purpose) -> String {
    hex::encode(key().derive(p).expose_secret())
}

#[test]
fn recovery_key_and_subkeys() {
    assert_eq!(
        key().to_recovery_key().expose(),
        "0001-0203-0405-0607-0809-0a0b-0c0d-0e0f-1011-1213-1415-1617-1819-1a1b-1c1d-1e1f"
    );
    let expected = [
        (
            Purpose::BlobEncryption,
            "b0744c8c3b8a049925146374cb03492e687686644fb5faadb35eacb54dc009a9",
        ),
        (
            Purpose::MetadataEncryption,
            "6c8d7699c49e5f7ba45dc70068f62af2f813a0a4c39765435942337c32391d0f",
        ),
        (
            Purpose::DataId,
            "e188012dbfffd1720789c76930d31fd3a4d4be2387673ee037e16ef09ef5404f",
        ),
        (
            Purpose::TreeId,
            "88c1f3a6003721b04b431513f5f8f02ad6601bc736be8ebb475719f10db72454",
        ),
        (
            Purpose::ChunkerGear,
            "2ec12d4ccfb64ff05cfada9d84277243735f2a5722d228310ed5be3080432da5",
        ),
    ];
    for (p, hex) in expected {
        assert_eq!(sub_hex(p), hex, "{p:?}");
    }
}

#[test]
fn blob_ids_and_gear_table() {
    let id = IdKey::new(key().derive(Purpose::DataId)).id(b"arca");
    assert_eq!(
        hex::encode(id),
        "1e810a992fbac769288e1dfe771e567efd6ffbd41d44146be6fd91fe18f982ee"
    );
    let c = Chunker::new(
        &key().derive(Purpose::ChunkerGear),
        ChunkerParams::default(),
    );
    let mut data = vec![0u8; 3 << 20];
    // Input: the TreeId subkey's XOF stream (any fixed bytes would do).
    key().derive(Purpose::TreeId).expand(&mut data);
    let mut lens = Vec::new();
    c.chunk_stream::<_, std::io::Error>(&data[..], Boundaries::ContentDefined, |b| {
        lens.push(b.len());
        Ok(())
    })
    .unwrap();
    assert_eq!(
        format!("{lens:?}"),
        "[360736, 83694, 611550, 92796, 342631, 309239, 324739, 373477, 345686, 301180]"
    );
}

#[test]
fn sealed_record_and_objects() {
    let meta = key().derive(Purpose::MetadataEncryption);
    let k = ObjectKey::new(&meta, &Salt([0x11; 32]));
    let mut buf = b"hello".to_vec();
    k.seal_at(PREFIX_LEN as u64, b"ARCA\x01\x03", &mut buf, 0);
    assert_eq!(
        hex::encode(&buf),
        "cf7c07dbb07038fda3e63bc4e48116d8b38ee74690"
    );

    let obj = format::seal_meta_with_salt(&meta, MetaKind::Snapshot, &(1u8, "x"), Salt([0x22; 32]))
        .unwrap();
    assert_eq!(
        hex::encode(&obj),
        "4152434101222222222222222222222222222222222222222222222222222222222222222209510dd347bc7fa4f8537f752a2015e834d127df"
    );

    let blob_key = key().derive(Purpose::BlobEncryption);
    let mut pack = PackWriter::with_salt(&blob_key, Salt([0x33; 32]));
    let mut z = zstd::bulk::Compressor::new(format::ZSTD_LEVEL).unwrap();
    pack.add(&mut z, BlobType::Data, BlobId([0x44; 32]), b"raw!");
    let (bytes, info) = pack.finish().unwrap();
    assert_eq!(
        hex::encode(&bytes),
        "41524341013333333333333333333333333333333333333333333333333333333333333333e634fd46e94476525ea4ac17884c6f5dbfd1bd4d7feaabe372f1d57f97244aaf23313b3b8c5b3a6c6e40ce4efa6a82bfa3670b33299962116d8230bd2edaffb74b0cd40291072d785fea96bc8076fa3a6c1d34c612c68fc2757249c1c078"
    );
    assert_eq!(
        info.name.to_hex(),
        "551d951f685f986dbe1b7a69cf78f0d1350c31501b9d8e8cd068f3f64df39b2e"
    );
}

#[test]
fn setting_object() {
    let meta = key().derive(Purpose::MetadataEncryption);
    let setting = crate::settings::Setting {
        name: "n".into(),
        value: b"v".to_vec(),
        time: 1,
        time_nsec: 2,
    };
    let obj =
        format::seal_meta_with_salt(&meta, MetaKind::Setting, &setting, Salt([0x55; 32])).unwrap();
    assert_eq!(
        hex::encode(&obj),
        "41524341015555555555555555555555555555555555555555555555555555555555555555adbc4b3162faacc2924fa92a91e3a8b403ccce05f11950"
    );
}
