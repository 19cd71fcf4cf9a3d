// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IRegistry
/// @notice String key -> typed value store owned by the Timelock: contract addresses (`contract.<Name>`),
///         protocol parameters and node code hashes (`node.code.hash.<version>`). A key holds one value type.
interface IRegistry {
    /// @notice The kind of value stored under a key.
    enum ValueType {
        None,
        Address,
        Uint,
        Bytes32,
        String
    }

    /// @notice An address value was set.
    event AddressSet(bytes32 indexed keyHash, string key, address value);
    /// @notice A uint value was set.
    event UintSet(bytes32 indexed keyHash, string key, uint256 value);
    /// @notice A bytes32 value was set.
    event Bytes32Set(bytes32 indexed keyHash, string key, bytes32 value);
    /// @notice A string value was set.
    event StringSet(bytes32 indexed keyHash, string key, string value);
    /// @notice A key was removed.
    event KeyRemoved(bytes32 indexed keyHash, string key);

    /// @notice Nothing is stored under `key` (or a value of another type is).
    error RegistryKeyNotSet(string key);
    /// @notice `key` already holds a value of another type.
    error RegistryTypeMismatch(string key, ValueType stored, ValueType requested);
    /// @notice The empty string is not a key.
    error RegistryEmptyKey();
    /// @notice Batch arrays differ in length.
    error RegistryLengthMismatch(uint256 keys, uint256 values);
    /// @notice Batch larger than MAX_BATCH.
    error RegistryBatchTooLarge(uint256 length, uint256 max);

    /// @notice Admin: store an address under `key`.
    function setAddress(string calldata key, address value) external;
    /// @notice Admin: store a uint under `key`.
    function setUint(string calldata key, uint256 value) external;
    /// @notice Admin: store a bytes32 under `key`.
    function setBytes32(string calldata key, bytes32 value) external;
    /// @notice Admin: store a string under `key`.
    function setString(string calldata key, string calldata value) external;
    /// @notice Admin: store several addresses (at most MAX_BATCH).
    function setAddresses(string[] calldata keys, address[] calldata values) external;
    /// @notice Admin: remove `key` (any type); reverts RegistryKeyNotSet when unset.
    function remove(string calldata key) external;

    /// @notice The address under `key`; reverts RegistryKeyNotSet when unset or not an address.
    function getAddress(string calldata key) external view returns (address);
    /// @notice The uint under `key`; reverts RegistryKeyNotSet when unset or not a uint.
    function getUint(string calldata key) external view returns (uint256);
    /// @notice The bytes32 under `key`; reverts RegistryKeyNotSet when unset or not a bytes32.
    function getBytes32(string calldata key) external view returns (bytes32);
    /// @notice The string under `key`; reverts RegistryKeyNotSet when unset or not a string.
    function getString(string calldata key) external view returns (string memory);
    /// @notice Non-reverting bytes32 lookup (the node's fail-closed code-hash check).
    /// @return set true when a bytes32 is stored under `key`
    /// @return value the value (zero when not set)
    function tryGetBytes32(string calldata key) external view returns (bool set, bytes32 value);
    /// @notice True when any value is stored under `key`.
    function isSet(string calldata key) external view returns (bool);
    /// @notice The type of the value stored under `key` (`None` when unset).
    function typeOf(string calldata key) external view returns (ValueType);
}
