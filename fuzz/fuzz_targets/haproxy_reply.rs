//! HAProxy Runtime API replies: a weight within HAProxy's range, or a refusal that
//! quotes the command.
#![no_main]

use canaryd::adapters::router::haproxy::{set_reply, weight_reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let reply = String::from_utf8_lossy(data);
    let get = "get weight checkout-api/canary";
    match weight_reply(get, &reply) {
        Ok(weight) => {
            assert!(weight <= 256, "{weight}");
            let first = reply.split_whitespace().next().map(str::parse::<u32>);
            assert_eq!(first, Some(Ok(weight)), "{reply:?}");
        }
        Err(error) => {
            assert_eq!(error.metric_label(), "refused");
            let message = error.to_string();
            assert!(message.contains(get) && message.len() < 600, "{message}");
        }
    }
    let set = "set server checkout-api/canary weight 25";
    match set_reply(set, &reply) {
        Ok(()) => assert!(reply.trim().is_empty()),
        Err(error) => assert!(error.to_string().contains(set)),
    }
});
