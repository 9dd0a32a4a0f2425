/*
 * wormhunt: FuzzBunch exploit tools (EternalBlue, DoublePulsar) as dropped by SMB worms.
 * Written for wormhunt from public descriptions (threat-intel.md 1.3): tool file names,
 * command-line options and support DLL names. Licence: Apache-2.0, as the project.
 */

rule WH_FuzzBunch_EternalBlue_Tool : exploit fuzzbunch
{
    meta:
        author = "wormhunt"
        description = "EternalBlue exploit tool or its config (FuzzBunch name, options and support DLLs)"
        family = "EternalBlue"
        confidence = "high"
    strings:
        $name1 = "Eternalblue-2.2.0" ascii wide nocase
        $name2 = "eternalblue-2.2.0.fb" ascii wide nocase
        $name3 = "etebcore-2.x86.dll" ascii wide nocase
        $opt1 = "--InConfig" ascii wide
        $opt2 = "--TargetIp" ascii wide
        $opt3 = "--TargetPort" ascii wide
        $opt4 = "--OutConfig" ascii wide
        $dll1 = "trch-1.dll" ascii wide nocase
        $dll2 = "tucl-1.dll" ascii wide nocase
        $dll3 = "coli-0.dll" ascii wide nocase
        $dll4 = "exma-1.dll" ascii wide nocase
        $dll5 = "tibe-2.dll" ascii wide nocase
        $dll6 = "cnli-1.dll" ascii wide nocase
        $dll7 = "xdvl-0.dll" ascii wide nocase
        $dll8 = "crli-0.dll" ascii wide nocase
        $dll9 = "trfo-2.dll" ascii wide nocase
        $dll10 = "posh-0.dll" ascii wide nocase
    condition:
        filesize < 20MB and (
            (1 of ($name*) and (1 of ($opt*) or 2 of ($dll*)))
            or (2 of ($opt*) and 3 of ($dll*))
            or 6 of ($dll*)
        )
}

rule WH_FuzzBunch_DoublePulsar_Tool : exploit fuzzbunch
{
    meta:
        author = "wormhunt"
        description = "DoublePulsar implant tool or its config (FuzzBunch name and options)"
        family = "DoublePulsar"
        confidence = "high"
    strings:
        $name = "Doublepulsar-1.3.1" ascii wide nocase
        $opt1 = "--InConfig" ascii wide
        $opt2 = "--DllPayload" ascii wide
        $opt3 = "--payloadDllOrdinal" ascii wide
        $opt4 = "--ProcessName" ascii wide
        $opt5 = "--Architecture" ascii wide
        $opt6 = "--Function" ascii wide
        $fn = "RunDLL" ascii wide
    condition:
        filesize < 20MB and (
            ($name and 1 of ($opt*))
            or (3 of ($opt*) and $fn)
        )
}

rule WH_FuzzBunch_Support_DLL_Names : fuzzbunch
{
    meta:
        author = "wormhunt"
        description = "Several FuzzBunch support DLL names together (an exploit kit folder listing, script or loader)"
        family = "EternalBlue"
        confidence = "medium"
    strings:
        $d1 = "trch-1.dll" ascii wide nocase
        $d2 = "tucl-1.dll" ascii wide nocase
        $d3 = "coli-0.dll" ascii wide nocase
        $d4 = "exma-1.dll" ascii wide nocase
        $d5 = "tibe-2.dll" ascii wide nocase
        $d6 = "cnli-1.dll" ascii wide nocase
        $d7 = "xdvl-0.dll" ascii wide nocase
        $d8 = "crli-0.dll" ascii wide nocase
        $d9 = "trfo-2.dll" ascii wide nocase
        $d10 = "posh-0.dll" ascii wide nocase
    condition:
        4 of them
}
