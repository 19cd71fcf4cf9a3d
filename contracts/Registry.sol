// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IRegistry} from "./interfaces/IRegistry.sol";

/// @title Registry
/// @notice String key -> typed value store; the admin (the Timelock after deploy) writes.
contract Registry is AccessControl, IRegistry {
    /// @notice Maximum entries in one `setAddresses` batch.
    uint256 public constant MAX_BATCH = 64;

    mapping(bytes32 keyHash => ValueType) private _types;
    mapping(bytes32 keyHash => address) private _addresses;
    mapping(bytes32 keyHash => uint256) private _uints;
    mapping(bytes32 keyHash => bytes32) private _bytes32s;
    mapping(bytes32 keyHash => string) private _strings;

    /// @param admin receives DEFAULT_ADMIN_ROLE
    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @inheritdoc IRegistry
    function setAddress(string calldata key, address value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setAddress(key, value);
    }

    /// @inheritdoc IRegistry
    function setUint(string calldata key, uint256 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        bytes32 h = _claim(key, ValueType.Uint);
        _uints[h] = value;
        emit UintSet(h, key, value);
    }

    /// @inheritdoc IRegistry
    function setBytes32(string calldata key, bytes32 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        bytes32 h = _claim(key, ValueType.Bytes32);
        _bytes32s[h] = value;
        emit Bytes32Set(h, key, value);
    }

    /// @inheritdoc IRegistry
    function setString(string calldata key, string calldata value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        bytes32 h = _claim(key, ValueType.String);
        _strings[h] = value;
        emit StringSet(h, key, value);
    }

    /// @inheritdoc IRegistry
    function setAddresses(string[] calldata keys, address[] calldata values)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        uint256 n = keys.length;
        if (n != values.length) revert RegistryLengthMismatch(n, values.length);
        if (n > MAX_BATCH) revert RegistryBatchTooLarge(n, MAX_BATCH);
        for (uint256 i; i < n; ++i) {
            _setAddress(keys[i], values[i]);
        }
    }

    /// @inheritdoc IRegistry
    function remove(string calldata key) external onlyRole(DEFAULT_ADMIN_ROLE) {
        bytes32 h = keccak256(bytes(key));
        ValueType t = _types[h];
        if (t == ValueType.None) revert RegistryKeyNotSet(key);
        delete _types[h];
        if (t == ValueType.Address) delete _addresses[h];
        else if (t == ValueType.Uint) delete _uints[h];
        else if (t == ValueType.Bytes32) delete _bytes32s[h];
        else delete _strings[h];
        emit KeyRemoved(h, key);
    }

    /// @inheritdoc IRegistry
    function getAddress(string calldata key) external view returns (address) {
        return _addresses[_expect(key, ValueType.Address)];
    }

    /// @inheritdoc IRegistry
    function getUint(string calldata key) external view returns (uint256) {
        return _uints[_expect(key, ValueType.Uint)];
    }

    /// @inheritdoc IRegistry
    function getBytes32(string calldata key) external view returns (bytes32) {
        return _bytes32s[_expect(key, ValueType.Bytes32)];
    }

    /// @inheritdoc IRegistry
    function getString(string calldata key) external view returns (string memory) {
        return _strings[_expect(key, ValueType.String)];
    }

    /// @inheritdoc IRegistry
    function tryGetBytes32(string calldata key) external view returns (bool set, bytes32 value) {
        bytes32 h = keccak256(bytes(key));
        if (_types[h] != ValueType.Bytes32) return (false, bytes32(0));
        return (true, _bytes32s[h]);
    }

    /// @inheritdoc IRegistry
    function isSet(string calldata key) external view returns (bool) {
        return _types[keccak256(bytes(key))] != ValueType.None;
    }

    /// @inheritdoc IRegistry
    function typeOf(string calldata key) external view returns (ValueType) {
        return _types[keccak256(bytes(key))];
    }

    function _setAddress(string calldata key, address value) private {
        bytes32 h = _claim(key, ValueType.Address);
        _addresses[h] = value;
        emit AddressSet(h, key, value);
    }

    /// @dev Validates the key and its type, records the type; returns the key hash.
    function _claim(string calldata key, ValueType t) private returns (bytes32 h) {
        if (bytes(key).length == 0) revert RegistryEmptyKey();
        h = keccak256(bytes(key));
        ValueType stored = _types[h];
        if (stored == ValueType.None) _types[h] = t;
        else if (stored != t) revert RegistryTypeMismatch(key, stored, t);
    }

    function _expect(string calldata key, ValueType t) private view returns (bytes32 h) {
        h = keccak256(bytes(key));
        if (_types[h] != t) revert RegistryKeyNotSet(key);
    }
}
