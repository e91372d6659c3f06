//! Route ownership. The `routes` row of a route names its owner (the one analysis that
//! may drive it), the successor waiting for it, and an epoch that grows with every
//! change of owner. Each transaction that changes ownership locks that row first.

use async_trait::async_trait;
use sqlx::Row;

use super::{SqlStore, Tx, backend, document, sql, time};
use crate::domain::analysis::Status;
use crate::domain::record::Analysis;
use crate::ports::{
    Change, Created, Lease, RouteOwnership, RouteStore, StoreError, TakeOver, Wake,
};

impl SqlStore {
    /// The route's row, created if missing, locked until the transaction ends.
    pub(super) async fn lock_route(
        &self,
        tx: &mut Tx,
        route_key: &str,
    ) -> Result<RouteOwnership, StoreError> {
        sqlx::query(
            "INSERT INTO routes (route_key, epoch) VALUES ($1, 0) ON CONFLICT (route_key) DO NOTHING",
        )
        .bind(route_key)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
        let row = sql(format!(
            "SELECT owner, successor, epoch FROM routes WHERE route_key = $1{}",
            self.dialect.for_update()
        ))
        .bind(route_key)
        .fetch_one(&mut **tx)
        .await
        .map_err(backend)?;
        Ok(RouteOwnership {
            owner: row.try_get(0).map_err(backend)?,
            successor: row.try_get(1).map_err(backend)?,
            epoch: row.try_get(2).map_err(backend)?,
        })
    }

    async fn is_active(tx: &mut Tx, id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT active FROM analyses WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(backend)?;
        Ok(match row {
            Some(row) => row.try_get::<i64, _>(0).map_err(backend)? == 1,
            None => false,
        })
    }

    /// The first of `candidates` that is an active analysis other than `id`.
    async fn active_other(
        tx: &mut Tx,
        id: &str,
        candidates: &[&Option<String>],
    ) -> Result<Option<String>, StoreError> {
        let candidates: Vec<String> = candidates.iter().filter_map(|c| (*c).clone()).collect();
        for candidate in candidates {
            if candidate != id && Self::is_active(tx, &candidate).await? {
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    }

    async fn set_owner(
        tx: &mut Tx,
        route_key: &str,
        owner: Option<&str>,
    ) -> Result<i64, StoreError> {
        let statement = match owner {
            Some(owner) => sqlx::query(
                "UPDATE routes SET owner = $2, successor = NULL, epoch = epoch + 1 \
                 WHERE route_key = $1 RETURNING epoch",
            )
            .bind(route_key)
            .bind(owner),
            None => sqlx::query(
                "UPDATE routes SET owner = NULL, successor = NULL, epoch = epoch + 1 \
                 WHERE route_key = $1 RETURNING epoch",
            )
            .bind(route_key),
        };
        let row = statement.fetch_one(&mut **tx).await.map_err(backend)?;
        row.try_get(0).map_err(backend)
    }

    /// A new analysis claims its route: it owns it when nobody active does; otherwise it
    /// waits as the successor, and the owner (and any older successor) is superseded.
    pub(super) async fn claim_route(
        &self,
        tx: &mut Tx,
        analysis: &Analysis,
    ) -> Result<(Option<i64>, Vec<Wake>), StoreError> {
        let key = analysis.route_key();
        let route = self.lock_route(tx, &key).await?;
        let by = analysis.id.clone();
        let mut wakes = Vec::new();
        if let Some(successor) = Self::active_other(tx, &by, &[&route.successor]).await? {
            wakes.push(Wake::Superseded {
                id: successor,
                by: by.clone(),
            });
        }
        match Self::active_other(tx, &by, &[&route.owner]).await? {
            Some(owner) => {
                sqlx::query("UPDATE routes SET successor = $2 WHERE route_key = $1")
                    .bind(&key)
                    .bind(&by)
                    .execute(&mut **tx)
                    .await
                    .map_err(backend)?;
                wakes.insert(0, Wake::Superseded { id: owner, by });
                Ok((None, wakes))
            }
            None => Ok((Some(Self::set_owner(tx, &key, Some(&by)).await?), wakes)),
        }
    }

    /// An analysis ended: the route passes to its successor, if one waits.
    pub(super) async fn hand_over(
        &self,
        tx: &mut Tx,
        analysis: &Analysis,
        route: &RouteOwnership,
    ) -> Result<Vec<Wake>, StoreError> {
        let key = analysis.route_key();
        let id = &analysis.id;
        if route.owner.as_deref() == Some(id.as_str()) {
            let next = Self::active_other(tx, id, &[&route.successor]).await?;
            let epoch = Self::set_owner(tx, &key, next.as_deref()).await?;
            return Ok(next
                .map(|next| vec![Wake::RouteGranted { id: next, epoch }])
                .unwrap_or_default());
        }
        if route.successor.as_deref() == Some(id.as_str()) {
            sqlx::query("UPDATE routes SET successor = NULL WHERE route_key = $1")
                .bind(&key)
                .execute(&mut **tx)
                .await
                .map_err(backend)?;
        }
        Ok(Vec::new())
    }
}

#[async_trait]
impl RouteStore for SqlStore {
    async fn route(&self, route_key: &str) -> Result<RouteOwnership, StoreError> {
        let row = sqlx::query("SELECT owner, successor, epoch FROM routes WHERE route_key = $1")
            .bind(route_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        let Some(row) = row else {
            return Ok(RouteOwnership::default());
        };
        Ok(RouteOwnership {
            owner: row.try_get(0).map_err(backend)?,
            successor: row.try_get(1).map_err(backend)?,
            epoch: row.try_get(2).map_err(backend)?,
        })
    }

    async fn take_over(
        &self,
        analysis: &Analysis,
        was: Status,
        change: &Change,
        replica: &str,
    ) -> Result<TakeOver, StoreError> {
        let key = analysis.route_key();
        let mut tx = self.begin_write().await?;
        let route = self.lock_route(&mut tx, &key).await?;
        let candidates = [&route.owner, &route.successor];
        if let Some(owner) = Self::active_other(&mut tx, &analysis.id, &candidates).await? {
            return Ok(TakeOver::Busy { owner });
        }
        let row = sqlx::query(
            "UPDATE analyses SET status = $1, updated_at = $2, document = $3, active = 1, \
             replica = $4, lease_token = lease_token + 1 \
             WHERE id = $5 AND status = $6 AND active = 0 RETURNING lease_token",
        )
        .bind(analysis.state.status.as_str())
        .bind(time(&analysis.state.updated_at))
        .bind(document(analysis)?)
        .bind(replica)
        .bind(&analysis.id)
        .bind(was.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(row) = row else {
            return Err(StoreError::Conflict(analysis.id.clone()));
        };
        let token: i64 = row.try_get(0).map_err(backend)?;
        let epoch = Self::set_owner(&mut tx, &key, Some(&analysis.id)).await?;
        Self::append(&mut tx, &analysis.id, change).await?;
        tx.commit().await.map_err(backend)?;
        Ok(TakeOver::Owned(Created {
            lease: Lease {
                replica: replica.to_string(),
                token,
            },
            epoch: Some(epoch),
            wakes: Vec::new(),
        }))
    }

    async fn adopt(
        &self,
        analysis: &Analysis,
        lease: &Lease,
    ) -> Result<RouteOwnership, StoreError> {
        let key = analysis.route_key();
        let mut tx = self.begin_write().await?;
        let mut route = self.lock_route(&mut tx, &key).await?;
        let id = analysis.id.as_str();
        let known = [&route.owner, &route.successor]
            .into_iter()
            .any(|slot| slot.as_deref() == Some(id));
        let owner = Self::active_other(&mut tx, id, &[&route.owner]).await?;
        if !known && owner.is_none() && Self::is_leased(&mut tx, id, lease).await? {
            route.epoch = Self::set_owner(&mut tx, &key, Some(id)).await?;
            route.owner = Some(id.to_string());
            route.successor = None;
        }
        tx.commit().await.map_err(backend)?;
        Ok(route)
    }

    async fn may_drive(
        &self,
        route_key: &str,
        analysis_id: &str,
        epoch: i64,
        lease: &Lease,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM routes r JOIN analyses a ON a.id = r.owner \
             WHERE r.route_key = $1 AND r.owner = $2 AND r.epoch = $3 \
             AND a.replica = $4 AND a.lease_token = $5 AND a.active = 1",
        )
        .bind(route_key)
        .bind(analysis_id)
        .bind(epoch)
        .bind(&lease.replica)
        .bind(lease.token)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        Ok(row.try_get::<i64, _>(0).map_err(backend)? > 0)
    }
}

impl SqlStore {
    async fn is_leased(tx: &mut Tx, id: &str, lease: &Lease) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM analyses WHERE id = $1 AND replica = $2 AND lease_token = $3",
        )
        .bind(id)
        .bind(&lease.replica)
        .bind(lease.token)
        .fetch_one(&mut **tx)
        .await
        .map_err(backend)?;
        Ok(row.try_get::<i64, _>(0).map_err(backend)? > 0)
    }
}
