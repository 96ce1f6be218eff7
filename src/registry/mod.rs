//! OCI registries: the distribution-spec client ([`client`]), where credentials come from
//! ([`auth`]), and pushing an image graph ([`push`]).

pub mod auth;
pub mod client;
pub mod push;
