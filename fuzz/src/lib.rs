//! What the fuzz targets share beyond `mqtt_codec::fuzzing` and
//! `reference_broker::fuzzing`: the differential decoding harness, which
//! needs the peers' decoders (dependencies of this crate only).

pub mod differential;
