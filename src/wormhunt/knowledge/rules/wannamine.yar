/*
 * wormhunt: WannaMine 3.0 (NRSMiner) components and their removal-relevant names.
 * Written for wormhunt from public descriptions (threat-intel.md 1.3, 2.1, 2.3).
 * Licence: Apache-2.0, as the project.
 */

rule WH_WannaMine3_Component_Strings : worm miner
{
    meta:
        author = "wormhunt"
        description = "WannaMine 3.0 component: service, container, folder and task names together"
        family = "WannaMine"
        confidence = "high"
    strings:
        $svc = "snmpstorsrv" ascii wide nocase
        $xml = "MarsTraceDiagnostics.xml" ascii wide nocase
        $dir = "AppDiagnostics" ascii wide nocase
        $task = "UPnPHostServices" ascii wide nocase
        $miner = "TrustedHostex" ascii wide nocase
    condition:
        2 of them
}

rule WH_WannaMine3_Service_DLL_Name : worm
{
    meta:
        author = "wormhunt"
        description = "Mentions the WannaMine 3.0 service DLL snmpstorsrv.dll (may also be a cleaner script)"
        family = "WannaMine"
        confidence = "low"
    strings:
        $a = "snmpstorsrv.dll" ascii wide nocase
    condition:
        $a
}

rule WH_WannaMine2_Component_Strings : worm miner
{
    meta:
        author = "wormhunt"
        description = "WannaMine 2.0 names: wmassrv service, SpeechsTracing folder, its DLLs"
        family = "WannaMine"
        confidence = "medium"
    strings:
        $a = "wmassrv" ascii wide nocase
        $b = "SpeechsTracing" ascii wide nocase
        $c = "HalPluginsServices" ascii wide nocase
        $d = "EnrollCertXaml" ascii wide nocase
        $e = "TasksHostServices" ascii wide nocase
    condition:
        2 of them
}

rule WH_WannaMine4_Names : worm miner
{
    meta:
        author = "wormhunt"
        description = "WannaMine 4.0 names: NetworkDistribution folder with dllhostex miner or rdpkax.xsl"
        family = "WannaMine"
        confidence = "medium"
    strings:
        $a = "NetworkDistribution" ascii wide nocase
        $b = "dllhostex" ascii wide nocase
        $c = "rdpkax.xsl" ascii wide nocase
        $d = "Location Awareness" ascii wide
    condition:
        2 of them
}
