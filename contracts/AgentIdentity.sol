// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC721URIStorage} from "@openzeppelin/contracts/token/ERC721/extensions/ERC721URIStorage.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IAgentIdentity} from "./interfaces/IAgentIdentity.sol";

/// @title AgentIdentity
/// @notice ERC-8004 Identity Registry (non-upgradeable, one per deployment).
contract AgentIdentity is ERC721URIStorage, EIP712, IAgentIdentity {
    /// @notice EIP-712 type of the wallet proof.
    bytes32 public constant AGENT_WALLET_SET_TYPEHASH =
        keccak256("AgentWalletSet(uint256 agentId,address newWallet,address owner,uint256 deadline)");
    /// @notice Latest allowed wallet-proof deadline, relative to now.
    uint256 public constant MAX_DEADLINE_DELAY = 5 minutes;
    /// @notice Maximum metadata entries accepted by `register`.
    uint256 public constant MAX_METADATA_ENTRIES = 32;
    /// @notice The reserved metadata key holding the verified wallet.
    string public constant AGENT_WALLET_KEY = "agentWallet";

    bytes32 private constant _AGENT_WALLET_KEY_HASH = keccak256("agentWallet");

    uint256 private _lastId;
    mapping(uint256 agentId => mapping(string key => bytes value)) private _metadata;
    mapping(uint256 agentId => address wallet) private _wallets;

    constructor() ERC721("Autonet Agent", "AGENT") EIP712("ERC8004IdentityRegistry", "1") {}

    modifier onlyAuthorized(uint256 agentId) {
        if (!_isAuthorized(_requireOwned(agentId), msg.sender, agentId)) {
            revert AgentIdentityNotAuthorized(msg.sender, agentId);
        }
        _;
    }

    /// @inheritdoc IAgentIdentity
    function register() external returns (uint256 agentId) {
        agentId = _register("");
        _safeMint(msg.sender, agentId);
    }

    /// @inheritdoc IAgentIdentity
    function register(string calldata agentURI) external returns (uint256 agentId) {
        agentId = _register(agentURI);
        _safeMint(msg.sender, agentId);
    }

    /// @inheritdoc IAgentIdentity
    function register(string calldata agentURI, MetadataEntry[] calldata metadata)
        external
        returns (uint256 agentId)
    {
        uint256 n = metadata.length;
        if (n > MAX_METADATA_ENTRIES) revert AgentIdentityTooManyEntries(n, MAX_METADATA_ENTRIES);
        agentId = _register(agentURI);
        for (uint256 i; i < n; ++i) {
            _setMetadata(agentId, metadata[i].metadataKey, metadata[i].metadataValue);
        }
        _safeMint(msg.sender, agentId);
    }

    /// @inheritdoc IAgentIdentity
    function setAgentURI(uint256 agentId, string calldata newURI) external onlyAuthorized(agentId) {
        _setTokenURI(agentId, newURI);
        emit URIUpdated(agentId, newURI, msg.sender);
    }

    /// @inheritdoc IAgentIdentity
    function setMetadata(uint256 agentId, string calldata metadataKey, bytes calldata metadataValue)
        external
        onlyAuthorized(agentId)
    {
        _setMetadata(agentId, metadataKey, metadataValue);
    }

    /// @inheritdoc IAgentIdentity
    function setAgentWallet(uint256 agentId, address newWallet, uint256 deadline, bytes calldata signature)
        external
        onlyAuthorized(agentId)
    {
        if (newWallet == address(0)) revert AgentIdentityZeroWallet();
        if (block.timestamp > deadline) revert AgentIdentityDeadlineExpired(deadline, block.timestamp);
        uint256 maxDeadline = block.timestamp + MAX_DEADLINE_DELAY;
        if (deadline > maxDeadline) revert AgentIdentityDeadlineTooFar(deadline, maxDeadline);
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(AGENT_WALLET_SET_TYPEHASH, agentId, newWallet, _ownerOf(agentId), deadline))
        );
        if (!SignatureChecker.isValidSignatureNow(newWallet, digest, signature)) {
            revert AgentIdentityInvalidWalletSignature();
        }
        _writeWallet(agentId, newWallet);
    }

    /// @inheritdoc IAgentIdentity
    function unsetAgentWallet(uint256 agentId) external onlyAuthorized(agentId) {
        _writeWallet(agentId, address(0));
    }

    /// @inheritdoc IAgentIdentity
    function getMetadata(uint256 agentId, string calldata metadataKey) external view returns (bytes memory) {
        return _metadata[agentId][metadataKey];
    }

    /// @inheritdoc IAgentIdentity
    function getAgentWallet(uint256 agentId) external view returns (address) {
        _requireOwned(agentId);
        return _wallets[agentId];
    }

    /// @inheritdoc IAgentIdentity
    function isAuthorizedOrOwner(address spender, uint256 agentId) external view returns (bool) {
        return _isAuthorized(_requireOwned(agentId), spender, agentId);
    }

    /// @inheritdoc IAgentIdentity
    function totalAgents() external view returns (uint256) {
        return _lastId;
    }

    /// @dev Allocates the id, sets URI and initial wallet (the registrant), emits Registered. Mint comes last.
    function _register(string memory agentURI) private returns (uint256 agentId) {
        agentId = ++_lastId;
        _setTokenURI(agentId, agentURI);
        emit Registered(agentId, agentURI, msg.sender);
        _writeWallet(agentId, msg.sender);
    }

    function _setMetadata(uint256 agentId, string calldata key, bytes calldata value) private {
        if (keccak256(bytes(key)) == _AGENT_WALLET_KEY_HASH) revert AgentIdentityReservedKey();
        _metadata[agentId][key] = value;
        emit MetadataSet(agentId, key, key, value);
    }

    function _writeWallet(uint256 agentId, address wallet) private {
        _wallets[agentId] = wallet;
        bytes memory packed = wallet == address(0) ? bytes("") : abi.encodePacked(wallet);
        _metadata[agentId][AGENT_WALLET_KEY] = packed;
        emit MetadataSet(agentId, AGENT_WALLET_KEY, AGENT_WALLET_KEY, packed);
    }

    /// @dev Clears the verified wallet when the agent changes hands (the new owner must prove a wallet again).
    function _update(address to, uint256 tokenId, address auth) internal override returns (address from) {
        from = super._update(to, tokenId, auth);
        if (from != address(0) && to != address(0) && _wallets[tokenId] != address(0)) {
            _writeWallet(tokenId, address(0));
        }
    }
}
