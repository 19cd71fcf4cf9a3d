//! The world-model substrate's verifier as a cartridge: input = seed events, contribution
//! events, held-out observations (`autonet_substrate`'s encoding); output = the gap before and
//! after the contribution and the world's root (`autonet_substrate::verify_bytes`).

autonet_cartridge_sdk::cartridge!(autonet_substrate::verify_bytes);
