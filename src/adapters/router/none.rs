//! The `none` router: canaryd decides, something else shifts traffic. It remembers the
//! weight it was asked for so the analysis reads back what it set.

use std::sync::atomic::{AtomicU8, Ordering};

use async_trait::async_trait;

use crate::ports::{RouterError, TrafficRouter, Writer};

#[derive(Debug, Default)]
pub struct DecideOnly {
    weight: AtomicU8,
}

#[async_trait]
impl TrafficRouter for DecideOnly {
    async fn set_weight(&self, weight: u8, _writer: &Writer) -> Result<(), RouterError> {
        self.weight.store(weight, Ordering::SeqCst);
        Ok(())
    }

    async fn weight(&self) -> Result<u8, RouterError> {
        Ok(self.weight.load(Ordering::SeqCst))
    }
}
