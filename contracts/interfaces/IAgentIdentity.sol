// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IAgentIdentity
/// @notice ERC-8004 "Trustless Agents" Identity Registry: an ERC-721 agent id whose token URI (`agentURI`) points
///         to the agent's registration file, plus on-chain key/value metadata and a verified payment wallet
///         (reserved metadata key "agentWallet", set with an EIP-712 proof signed by the new wallet).
///         Official function names and events; agent ids start at 1.
interface IAgentIdentity {
    /// @notice One metadata entry given at registration.
    struct MetadataEntry {
        string metadataKey;
        bytes metadataValue;
    }

    /// @notice Agent `agentId` was registered by `owner` with `agentURI`.
    event Registered(uint256 indexed agentId, string agentURI, address indexed owner);
    /// @notice The agent URI of `agentId` was changed to `newURI` by `updatedBy`.
    event URIUpdated(uint256 indexed agentId, string newURI, address indexed updatedBy);
    /// @notice Metadata `metadataKey` of `agentId` was set to `metadataValue`.
    event MetadataSet(
        uint256 indexed agentId, string indexed indexedMetadataKey, string metadataKey, bytes metadataValue
    );

    /// @notice The caller is neither the owner nor an approved operator of the agent.
    error AgentIdentityNotAuthorized(address caller, uint256 agentId);
    /// @notice "agentWallet" can only be changed through setAgentWallet / unsetAgentWallet.
    error AgentIdentityReservedKey();
    /// @notice The wallet is the zero address.
    error AgentIdentityZeroWallet();
    /// @notice The wallet proof deadline passed.
    error AgentIdentityDeadlineExpired(uint256 deadline, uint256 nowTs);
    /// @notice The wallet proof deadline is more than MAX_DEADLINE_DELAY in the future.
    error AgentIdentityDeadlineTooFar(uint256 deadline, uint256 maxDeadline);
    /// @notice The wallet proof is not signed by the new wallet.
    error AgentIdentityInvalidWalletSignature();
    /// @notice More than MAX_METADATA_ENTRIES metadata entries at registration.
    error AgentIdentityTooManyEntries(uint256 length, uint256 max);

    /// @notice Register a new agent without URI; the caller owns it and is its initial wallet.
    function register() external returns (uint256 agentId);

    /// @notice Register a new agent with `agentURI`.
    function register(string calldata agentURI) external returns (uint256 agentId);

    /// @notice Register a new agent with `agentURI` and metadata (at most MAX_METADATA_ENTRIES, no "agentWallet").
    function register(string calldata agentURI, MetadataEntry[] calldata metadata)
        external
        returns (uint256 agentId);

    /// @notice Owner or operator: change the agent URI.
    function setAgentURI(uint256 agentId, string calldata newURI) external;

    /// @notice Metadata value of `metadataKey` ("agentWallet" returns the 20 packed wallet bytes or empty).
    function getMetadata(uint256 agentId, string calldata metadataKey) external view returns (bytes memory);

    /// @notice Owner or operator: set metadata (not the reserved key "agentWallet").
    function setMetadata(uint256 agentId, string calldata metadataKey, bytes calldata metadataValue) external;

    /// @notice Owner or operator: set the verified wallet. `signature` is an EIP-712
    ///         `AgentWalletSet(uint256 agentId,address newWallet,address owner,uint256 deadline)` signed by
    ///         `newWallet` (ERC-1271 wallets accepted); `now <= deadline <= now + MAX_DEADLINE_DELAY`.
    function setAgentWallet(uint256 agentId, address newWallet, uint256 deadline, bytes calldata signature)
        external;

    /// @notice Owner or operator: clear the verified wallet.
    function unsetAgentWallet(uint256 agentId) external;

    /// @notice The verified wallet of `agentId` (zero when unset); reverts for unknown agents.
    function getAgentWallet(uint256 agentId) external view returns (address);

    /// @notice True when `spender` is the owner, approved for the token, or an operator of the owner.
    function isAuthorizedOrOwner(address spender, uint256 agentId) external view returns (bool);

    /// @notice Number of agents registered so far (the last agent id).
    function totalAgents() external view returns (uint256);
}
