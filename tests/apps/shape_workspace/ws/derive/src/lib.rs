//! A proc-macro member: `derive::word!()` expands to its support library's text.
use proc_macro::TokenStream;

#[proc_macro]
pub fn word(_input: TokenStream) -> TokenStream {
    format!("{:?}", macro_support::text()).parse().unwrap()
}
