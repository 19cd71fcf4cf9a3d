//! The world-model substrate as a task kind: answers the task-kind protocol
//! (`autonet_cartridge_sdk::kind`) with `autonet_substrate::kind::run`.

autonet_cartridge_sdk::cartridge!(autonet_substrate::kind::run);
