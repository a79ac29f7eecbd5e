//! Decoding a cluster bus message (src/cluster/message.rs), which comes from the network and
//! may come from another module: any input is refused or decoded, never a panic, allocation
//! bounded by the input, and what decodes encodes back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rediscache::cluster::message::{decode, encode_reply, encode_request, Message};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode(data) {
        let again = match &msg {
            Message::Request(r) => encode_request(r),
            Message::Reply(r) => encode_reply(r),
        };
        // Error texts are decoded lossily (invalid UTF-8 becomes U+FFFD), so compare the
        // decoded messages, not the bytes.
        let again = again.expect("a decoded message encodes");
        assert_eq!(decode(&again).ok(), Some(msg));
    }
});
