#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (book, _) = eepsocks::naming::AddressBook::parse(&text);
    // what we write we must read back whole
    let (again, warnings) = eepsocks::naming::AddressBook::parse(&book.to_hosts_txt());
    assert!(warnings.is_empty());
    assert_eq!(again.len(), book.len());
    let _ = eepsocks::naming::AddressBook::parse_csv(&text);
});
