/*
 * wormhunt: XMRig and other Monero miners (binaries, configs, command lines).
 * Written for wormhunt from public descriptions of XMRig's options and config keys.
 * Licence: Apache-2.0, as the project.
 */

rule WH_XMRig_Miner : miner
{
    meta:
        author = "wormhunt"
        description = "XMRig miner: its name together with its stratum URL or options"
        family = "XMRig"
        confidence = "high"
    strings:
        $x1 = "xmrig" ascii wide nocase
        $x2 = "XMRig/" ascii wide
        $s1 = "stratum+tcp://" ascii wide nocase
        $s2 = "stratum+ssl://" ascii wide nocase
        $o1 = "--donate-level" ascii wide
        $o2 = "--cpu-priority" ascii wide
        $o3 = "--max-cpu-usage" ascii wide
        $o4 = "--nicehash" ascii wide
        $o5 = "randomx" ascii wide nocase
        $o6 = "cryptonight" ascii wide nocase
    condition:
        1 of ($x*) and (1 of ($s*) or 2 of ($o*))
}

rule WH_XMRig_Config : miner config
{
    meta:
        author = "wormhunt"
        description = "XMRig JSON config (pools with url/user/pass and miner keys)"
        family = "XMRig"
        confidence = "medium"
    strings:
        $k1 = "\"pools\"" ascii wide
        $k2 = "\"donate-level\"" ascii wide
        $k3 = "\"randomx\"" ascii wide
        $k4 = "\"nicehash\"" ascii wide
        $k5 = "\"rig-id\"" ascii wide
        $k6 = "\"keepalive\"" ascii wide
        $k7 = "\"coin\"" ascii wide
        $k8 = "\"algo\"" ascii wide
        $url = /stratum\+(tcp|ssl):\/\/[a-z0-9.\-]+:[0-9]{2,5}/ nocase
    condition:
        filesize < 1MB and $k1 and (3 of ($k*) or ($url and 1 of ($k*)))
}

rule WH_Miner_CommandLine : miner
{
    meta:
        author = "wormhunt"
        description = "A coin-miner command line (stratum URL with user/pass options), e.g. in a script or task"
        family = "CoinMiner"
        confidence = "medium"
    strings:
        $url = /stratum\+(tcp|ssl):\/\/[a-z0-9.\-]+:[0-9]{2,5}/ nocase
        $u = /\s(-u|--user)[ =]/ ascii
        $p = /\s(-p|--pass)[ =]/ ascii
    condition:
        $url and ($u or $p)
}
