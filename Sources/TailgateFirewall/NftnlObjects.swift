import CNftables
import Glibc

/// Builds libnftnl objects from the ruleset's model. The caller frees what it gets back
/// (`nftnl_rule_add_expr` and `nftnl_set_elem_add` take ownership of expressions and elements).
enum NftnlObjects {
    static func table(_ name: String) throws(FirewallError) -> OpaquePointer {
        guard let table = nftnl_table_alloc() else { throw outOfMemory("nftnl_table_alloc") }
        nftnl_table_set_u32(table, attribute(NFTNL_TABLE_FAMILY), UInt32(NFPROTO_INET))
        nftnl_table_set_str(table, attribute(NFTNL_TABLE_NAME), name)
        // Flags 0, never NFT_TABLE_F_OWNER: the table must outlive the agent (fail closed).
        nftnl_table_set_u32(table, attribute(NFTNL_TABLE_FLAGS), 0)
        return table
    }

    static func counter(table: String, name: String) throws(FirewallError) -> OpaquePointer {
        guard let object = nftnl_obj_alloc() else { throw outOfMemory("nftnl_obj_alloc") }
        nftnl_obj_set_u32(object, attribute(NFTNL_OBJ_FAMILY), UInt32(NFPROTO_INET))
        nftnl_obj_set_str(object, attribute(NFTNL_OBJ_TABLE), table)
        nftnl_obj_set_str(object, attribute(NFTNL_OBJ_NAME), name)
        nftnl_obj_set_u32(object, attribute(NFTNL_OBJ_TYPE), UInt32(NFT_OBJECT_COUNTER))
        return object
    }

    /// The set with its key description, userdata (key byte order, for `nft list`) and elements.
    static func set(table: String, _ model: NftSet) throws(FirewallError) -> OpaquePointer {
        guard let set = nftnl_set_alloc() else { throw outOfMemory("nftnl_set_alloc") }
        nftnl_set_set_u32(set, attribute(NFTNL_SET_FAMILY), UInt32(NFPROTO_INET))
        nftnl_set_set_str(set, attribute(NFTNL_SET_TABLE), table)
        nftnl_set_set_str(set, attribute(NFTNL_SET_NAME), model.name)
        nftnl_set_set_u32(set, attribute(NFTNL_SET_KEY_TYPE), model.keyType.datatype)
        nftnl_set_set_u32(set, attribute(NFTNL_SET_KEY_LEN), UInt32(model.keyType.length))
        let flags = (model.isInterval ? NFT_SET_INTERVAL.rawValue : 0) | (model.hasTimeouts ? NFT_SET_TIMEOUT.rawValue : 0)
        nftnl_set_set_u32(set, attribute(NFTNL_SET_FLAGS), flags)
        if let size = model.size { nftnl_set_set_u32(set, attribute(NFTNL_SET_DESC_SIZE), size) }
        nftnl_set_set_u32(set, attribute(NFTNL_SET_ID), model.id)
        if let userdata = nftnl_udata_buf_alloc(64) {
            _ = nftnl_udata_put_u32(userdata, UInt8(NFTNL_UDATA_SET_KEYBYTEORDER.rawValue), model.keyType.byteOrder)
            _ = nftnl_set_set_data(set, attribute(NFTNL_SET_USERDATA), nftnl_udata_buf_data(userdata), nftnl_udata_buf_len(userdata))
            nftnl_udata_buf_free(userdata)
        }
        for element in model.elements {
            guard let item = nftnl_set_elem_alloc() else {
                nftnl_set_free(set)
                throw outOfMemory("nftnl_set_elem_alloc")
            }
            _ = element.key.withUnsafeBytes { nftnl_set_elem_set(item, attribute(NFTNL_SET_ELEM_KEY), $0.baseAddress, UInt32($0.count)) }
            if element.isIntervalEnd {
                nftnl_set_elem_set_u32(item, attribute(NFTNL_SET_ELEM_FLAGS), NFT_SET_ELEM_INTERVAL_END.rawValue)
            }
            nftnl_set_elem_add(set, item)
        }
        return set
    }

    static func chain(table: String, _ model: NftChain) throws(FirewallError) -> OpaquePointer {
        guard let chain = nftnl_chain_alloc() else { throw outOfMemory("nftnl_chain_alloc") }
        nftnl_chain_set_u32(chain, attribute(NFTNL_CHAIN_FAMILY), UInt32(NFPROTO_INET))
        nftnl_chain_set_str(chain, attribute(NFTNL_CHAIN_TABLE), table)
        nftnl_chain_set_str(chain, attribute(NFTNL_CHAIN_NAME), model.name)
        if let hook = model.hook {
            nftnl_chain_set_str(chain, attribute(NFTNL_CHAIN_TYPE), hook.type)
            nftnl_chain_set_u32(chain, attribute(NFTNL_CHAIN_HOOKNUM), hook.number)
            nftnl_chain_set_s32(chain, attribute(NFTNL_CHAIN_PRIO), hook.priority)
            nftnl_chain_set_u32(chain, attribute(NFTNL_CHAIN_POLICY), hook.policy)
        }
        return chain
    }

    /// The rule; lookups name their set and carry its id (the set is created in the same batch).
    static func rule(table: String, _ model: NftRule, setIDs: [String: UInt32]) throws(FirewallError) -> OpaquePointer {
        guard let rule = nftnl_rule_alloc() else { throw outOfMemory("nftnl_rule_alloc") }
        nftnl_rule_set_u32(rule, attribute(NFTNL_RULE_FAMILY), UInt32(NFPROTO_INET))
        nftnl_rule_set_str(rule, attribute(NFTNL_RULE_TABLE), table)
        nftnl_rule_set_str(rule, attribute(NFTNL_RULE_CHAIN), model.chain)
        for expression in model.expressions {
            do {
                nftnl_rule_add_expr(rule, try self.expression(expression, setIDs: setIDs))
            } catch {
                nftnl_rule_free(rule)
                throw error
            }
        }
        return rule
    }

    static func outOfMemory(_ call: String) -> FirewallError {
        .system(call: call, errno: ENOMEM)
    }
}
