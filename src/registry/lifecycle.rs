//! A person's life in the registry: moved out or deceased persons keep their history but get
//! no new inquiries ([`Registry::check_active`]); two unified numbers found to be one person are
//! merged ([`Registry::merge`]) with both numbers still resolving.

use renkei_ids::UnifiedAddressNumber;
use renkei_records::{RecordKind, RecordResult, StaffDetail};
use serde::Serialize;

use super::search::MERGED_PREFIX;
use super::{PersonState, Registry, RegistryError};
use crate::error::Error;
use renkei_store::{key2, Batch, StoreError, Tree};

/// What a merge answers.
#[derive(Debug, Clone, Serialize)]
pub struct Merged {
    pub from: UnifiedAddressNumber,
    pub into: UnifiedAddressNumber,
    /// Business links moved from `from` to `into`.
    pub links_moved: usize,
}

/// Why a merge was refused, with stable codes.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("a person cannot be merged into itself")]
    Same,
    #[error("the number to merge was already merged into another person")]
    AlreadyMerged,
    #[error("person not found")]
    NotFound,
    #[error("the merge raced another change; try again")]
    Raced,
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl MergeError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            MergeError::Same => "merge_same_person",
            MergeError::AlreadyMerged => "already_merged",
            MergeError::NotFound => "person_not_found",
            MergeError::Raced => "merge_conflict",
            MergeError::Registry(e) => e.code(),
        }
    }
}

impl Registry {
    /// Refuses new inquiries for a person who moved out or died (`person_inactive`).
    /// The gateway calls this where it accepts an inquiry, after resolving the unified number.
    pub fn check_active(&self, u: &UnifiedAddressNumber) -> Result<(), Error> {
        let u = self.follow_merge(u)?;
        let p = self.person(&u)?.ok_or(Error::NotFound)?;
        match p.state {
            PersonState::Active => Ok(()),
            PersonState::MovedOut => Err(Error::conflict(
                "person_inactive",
                "the person has moved out; no new inquiries are made for them",
            )),
            PersonState::Deceased => Err(Error::conflict(
                "person_inactive",
                "the person is deceased; no new inquiries are made for them",
            )),
        }
    }

    /// Merges `from` into `into`: business links move, the individual-number index and `from`
    /// itself point to `into`, `from`'s record stays (history), the merge is recorded.
    pub async fn merge(
        &self,
        from: &UnifiedAddressNumber,
        into: &UnifiedAddressNumber,
        staff: StaffDetail,
    ) -> Result<Merged, MergeError> {
        if from == into {
            return Err(MergeError::Same);
        }
        let redirect = format!("{MERGED_PREFIX}{from}").into_bytes();
        if self
            .store
            .get(Tree::Meta, &redirect)
            .map_err(RegistryError::from)?
            .is_some()
        {
            return Err(MergeError::AlreadyMerged);
        }
        if self.follow_merge(into)? != *into {
            return Err(MergeError::AlreadyMerged);
        }
        let pf = self.person(from)?.ok_or(MergeError::NotFound)?;
        let pi = self.person(into)?.ok_or(MergeError::NotFound)?;
        let mut b = Batch::new();
        b.require_absent(Tree::Meta, redirect.clone());
        b.put(Tree::Meta, redirect, into.to_string().into_bytes());
        // The individual number of `from` now finds the survivor.
        let n = self.individual_number(&pf)?;
        let idx = self.blind_index(&n);
        drop(n);
        b.put(Tree::BlindIndex, idx, into.to_string().into_bytes());
        // Facts searches no longer answer the merged number.
        let facts = self.basic_facts(&pf)?;
        for k in self.facts_index_keys(from, &facts) {
            b.delete(Tree::BlindIndex, k);
        }
        drop(facts);
        let links = self.links_of(from)?;
        let into_s = into.to_string();
        for (sys, bn) in &links {
            let fk = key2(sys.as_str(), bn.as_str());
            b.require_equal(
                Tree::BusinessLinks,
                fk.clone(),
                from.to_string().into_bytes(),
            );
            b.put(Tree::BusinessLinks, fk, into_s.clone().into_bytes());
            b.delete(Tree::ReverseLinks, key2(&from.to_string(), sys.as_str()));
            // The survivor keeps its own number for a system that linked both; the moved
            // number still resolves through BusinessLinks.
            if self.business_number(into, sys)?.is_none() {
                b.put(
                    Tree::ReverseLinks,
                    key2(&into_s, sys.as_str()),
                    bn.as_str().as_bytes().to_vec(),
                );
            }
        }
        // Guard both person records against a concurrent change.
        for p in [&pf, &pi] {
            let raw = self
                .store
                .get(Tree::Persons, p.unified.to_string().as_bytes())
                .map_err(RegistryError::from)?
                .ok_or(MergeError::NotFound)?;
            b.require_equal(Tree::Persons, p.unified.to_string().into_bytes(), raw);
        }
        let mut r = crate::records::base(RecordKind::StaffAction, RecordResult::Done);
        r.person = Some(*into);
        r.reference = Some(format!("merged:{from}"));
        r.staff = Some(StaffDetail {
            action: "person.merge".into(),
            target: Some(format!("person:{from}")),
            touched_individual_number: true,
            ..staff
        });
        crate::records::append(&mut b, &r);
        match self.store.commit(b).await {
            Ok(_) => Ok(Merged {
                from: *from,
                into: *into,
                links_moved: links.len(),
            }),
            Err(StoreError::Conflict { .. }) => Err(MergeError::Raced),
            Err(e) => Err(MergeError::Registry(e.into())),
        }
    }
}
